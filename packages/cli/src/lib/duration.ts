import { isoDateSchema } from '@llmguard/shared'
import { usage } from './errors.js'

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 }

/** `90s`, `15m`, `1h`, `7d`, `2w` → milliseconds; undefined for anything else. Units are lowercase only. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$/.exec(text.trim())
  if (!m) return undefined
  return Number(m[1]) * UNITS[m[2]!]!
}

/** The latest/earliest time a Date holds (±100,000,000 days from 1970). */
const MAX_TIME = 8.64e15

/**
 * A point in time from a flag: an ISO date (`2025-01-31`, `2025-01-31T12:00:00Z`) or a duration
 * back from now (`1h` = one hour ago). A date or time without an offset is UTC, whatever the
 * machine's time zone: `2025-01-31` and `2025-01-31T00:00:00` are the same instant. Returned as
 * ISO with offset, as the API wants it.
 */
export function parseTime(flag: string, text: string, now = Date.now()): string {
  const back = parseDuration(text)
  if (back !== undefined) {
    const t = now - back
    if (!(Math.abs(t) <= MAX_TIME)) throw usage(`--${flag}: ${text} back is before any date there can be`)
    return new Date(t).toISOString()
  }
  // `1M` read as a minute (or a month) would be a silent guess: units are lowercase, and months are not one
  const upper = /^\d+(?:\.\d+)?\s*([SMHDW])$/.exec(text.trim())
  if (upper) {
    const hint = upper[1] === 'M' ? ' (m is minutes; for months use days, e.g. 30d)' : ` (${upper[1]!.toLowerCase()}, not ${upper[1]})`
    throw usage(`--${flag}: duration units are lowercase: s, m, h, d, w${hint} (got "${text}")`)
  }
  const date = /^(\d{4})-(\d{2})-(\d{2})/.exec(text)
  if (date) {
    // Date.parse rolls an impossible day over (2025-02-30 is March 2nd): a typo must not pass as another date
    const [, y, m, d] = date.map(Number) as [number, number, number, number]
    if (m < 1 || m > 12) throw usage(`--${flag}: there is no such date as ${date[0]} (months are 01–12)`)
    const days = daysInMonth(y, m)
    if (d < 1 || d > days) throw usage(`--${flag}: there is no such date as ${date[0]} (${date[0].slice(0, 7)} has ${days} days)`)
    // Date.parse reads a time without an offset as local time, a bare date as UTC: UTC for both,
    // the time written after a T or a space
    const iso = text.replace(/^(\d{4}-\d{2}-\d{2}) (?=\d)/, '$1T')
    const local = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$/.test(iso)
    const full = date[0] === iso ? `${iso}T00:00:00Z` : local ? `${iso}Z` : iso
    const t = Date.parse(full)
    if (!Number.isNaN(t)) {
      // a time finer than the millisecond goes as written (the API's own check follows): a Date
      // keeps only milliseconds, and records are stored to the microsecond
      const fine = /\.\d{4,}/.test(full) && isoDateSchema.safeParse(full).success
      return fine ? full : new Date(t).toISOString()
    }
  }
  throw usage(`--${flag}: expected a duration like 15m, 1h, 7d or a date like 2025-01-31 or 2025-01-31T12:00:00Z (got "${text}")`)
}

function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!
}
