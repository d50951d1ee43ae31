import { describe, expect, it } from 'vitest'
import { parseTime } from '../src/lib/duration.js'

describe('parseTime', () => {
  it('takes real dates, leap days included, as UTC midnight or the time given', () => {
    expect(parseTime('since', '2024-02-29')).toBe('2024-02-29T00:00:00.000Z')
    expect(parseTime('since', '2000-02-29')).toBe('2000-02-29T00:00:00.000Z')
    expect(parseTime('since', '2025-12-31')).toBe('2025-12-31T00:00:00.000Z')
    expect(parseTime('until', '2025-01-31T12:00:00+02:00')).toBe('2025-01-31T10:00:00.000Z')
    expect(parseTime('since', '1h', Date.parse('2025-01-01T01:00:00Z'))).toBe('2025-01-01T00:00:00.000Z')
  })

  it('refuses a day the month does not have instead of rolling it over', () => {
    expect(() => parseTime('since', '2025-02-30')).toThrow('--since: there is no such date as 2025-02-30 (2025-02 has 28 days)')
    expect(() => parseTime('since', '2025-02-29')).toThrow('(2025-02 has 28 days)')
    // a century is a leap year only every 400 years
    expect(() => parseTime('since', '1900-02-29')).toThrow('(1900-02 has 28 days)')
    expect(() => parseTime('until', '2025-06-31T08:00:00Z')).toThrow('--until: there is no such date as 2025-06-31 (2025-06 has 30 days)')
    expect(() => parseTime('until', '2025-00-10')).toThrow('(months are 01–12)')
    expect(() => parseTime('until', '2025-01-31T25:00:00Z')).toThrow('--until: expected a duration like 15m')
  })
})

describe('parseTime, edges', () => {
  it('reads a time without an offset as UTC, as a bare date is', () => {
    const tz = process.env.TZ
    // a zone far from UTC: local time would show as a 10-hour shift
    process.env.TZ = 'Pacific/Honolulu'
    try {
      expect(parseTime('since', '2026-12-01T00:00:00')).toBe('2026-12-01T00:00:00.000Z')
      expect(parseTime('since', '2026-12-01T08:30')).toBe('2026-12-01T08:30:00.000Z')
      expect(parseTime('since', '2026-12-01T08:30:15.250')).toBe('2026-12-01T08:30:15.250Z')
      // a space in place of the T is the same time, UTC too
      expect(parseTime('since', '2026-12-01 08:30')).toBe('2026-12-01T08:30:00.000Z')
      expect(parseTime('since', '2026-12-01 08:30:15')).toBe('2026-12-01T08:30:15.000Z')
      // finer than a millisecond: kept as written, as records are stored to the microsecond
      expect(parseTime('since', '2026-12-01T10:00:00.000001Z')).toBe('2026-12-01T10:00:00.000001Z')
      expect(parseTime('since', '2026-12-01 10:00:00.000001')).toBe('2026-12-01T10:00:00.000001Z')
      expect(parseTime('since', '2026-12-01')).toBe('2026-12-01T00:00:00.000Z')
      expect(parseTime('since', '2026-12-01T00:00:00-10:00')).toBe('2026-12-01T10:00:00.000Z')
    } finally {
      if (tz === undefined) delete process.env.TZ
      else process.env.TZ = tz
    }
  })

  it('refuses an upper-case unit instead of guessing: 1M is neither a minute nor a month', () => {
    expect(() => parseTime('since', '1M')).toThrow('--since: duration units are lowercase: s, m, h, d, w (m is minutes; for months use days, e.g. 30d) (got "1M")')
    expect(() => parseTime('until', '2H')).toThrow('--until: duration units are lowercase: s, m, h, d, w (h, not H) (got "2H")')
    expect(parseTime('since', '1m', Date.parse('2025-01-01T01:00:00Z'))).toBe('2025-01-01T00:59:00.000Z')
  })

  it('a duration back past any date is a usage error naming the flag, not a RangeError', () => {
    expect(() => parseTime('since', '99999999999w')).toThrow(expect.objectContaining({ code: 'USAGE', exitCode: 2, message: '--since: 99999999999w back is before any date there can be' }))
  })
})
