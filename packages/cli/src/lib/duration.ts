import { usage } from './errors.js'

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 }

/** `90s`, `15m`, `1h`, `7d`, `2w` → milliseconds; undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$/i.exec(text.trim())
  if (!m) return undefined
  return Number(m[1]) * UNITS[m[2]!.toLowerCase()]!
}

/**
 * A point in time from a flag: an ISO date (`2025-01-31`, `2025-01-31T12:00:00Z`) or a duration
 * back from now (`1h` = one hour ago). Returned as ISO with offset, as the API wants it.
 */
export function parseTime(flag: string, text: string, now = Date.now()): string {
  const back = parseDuration(text)
  if (back !== undefined) return new Date(now - back).toISOString()
  const date = /^(\d{4})-(\d{2})-(\d{2})/.exec(text)
  if (date) {
    // Date.parse rolls an impossible day over (2025-02-30 is March 2nd): a typo must not pass as another date
    const [, y, m, d] = date.map(Number) as [number, number, number, number]
    if (m < 1 || m > 12) throw usage(`--${flag}: there is no such date as ${date[0]} (months are 01–12)`)
    const days = daysInMonth(y, m)
    if (d < 1 || d > days) throw usage(`--${flag}: there is no such date as ${date[0]} (${date[0].slice(0, 7)} has ${days} days)`)
    const t = Date.parse(date[0] === text ? `${text}T00:00:00Z` : text)
    if (!Number.isNaN(t)) return new Date(t).toISOString()
  }
  throw usage(`--${flag}: expected a duration like 15m, 1h, 7d or a date like 2025-01-31 or 2025-01-31T12:00:00Z (got "${text}")`)
}

function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!
}
