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
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text)
    if (!Number.isNaN(t)) return new Date(t).toISOString()
  }
  throw usage(`--${flag}: expected a duration like 15m, 1h, 7d or a date like 2025-01-31 or 2025-01-31T12:00:00Z (got "${text}")`)
}
