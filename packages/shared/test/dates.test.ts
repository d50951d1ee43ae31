import { describe, expect, it } from 'vitest'
import { compareIso, incidentQuerySchema } from '../src/index.js'

describe('compareIso', () => {
  it('orders API date-times to the microsecond, across offsets, as PostgreSQL stores them', () => {
    expect(compareIso('2026-12-01T10:00:00Z', '2026-12-01T10:00:00.000001Z')).toBeLessThan(0)
    expect(compareIso('2026-12-01T10:00:00.0009Z', '2026-12-01T10:00:00.000001Z')).toBeGreaterThan(0)
    expect(compareIso('2026-12-01T10:00:00.000001Z', '2026-12-01T11:00:00.000001+01:00')).toBe(0)
    // PostgreSQL rounds past the sixth digit: these are one stored instant
    expect(compareIso('2026-12-01T10:00:00.0000004Z', '2026-12-01T10:00:00Z')).toBe(0)
    expect(compareIso('2026-12-01T10:00:00.9999996Z', '2026-12-01T10:00:01Z')).toBe(0)
    expect(compareIso('1970-01-01T00:00:00Z', '9999-12-31T23:59:59.999999Z')).toBeLessThan(0)
  })

  it('lets an incident list range of one microsecond through, and refuses one that ends where it starts', () => {
    expect(incidentQuerySchema.safeParse({ startDate: '2026-12-01T10:00:00Z', endDate: '2026-12-01T10:00:00.000001Z' }).success).toBe(true)
    expect(incidentQuerySchema.safeParse({ startDate: '2026-12-01T10:00:00.000001Z', endDate: '2026-12-01T10:00:00.0000014Z' }).success).toBe(false)
  })
})
