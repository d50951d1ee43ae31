import { MAX_METADATA_BYTES, MAX_METADATA_DEPTH, MAX_TEXT_BYTES, nestedWithin } from '@llmguard/shared'

/**
 * Cuts a string to at most `maxBytes` of UTF-8 without splitting a character. The collector
 * rejects a whole record over the limit, so an oversize prompt is better kept truncated.
 */
export function truncateUtf8(s: string, maxBytes = MAX_TEXT_BYTES): string {
  // a UTF-16 unit is at most 3 UTF-8 bytes: short strings never need the byte count
  if (s.length * 3 <= maxBytes) return s
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s
  let cut = Buffer.from(s, 'utf8').subarray(0, maxBytes).toString('utf8')
  // a partial character at the cut decodes to U+FFFD: drop it
  if (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1)
  return cut
}

/** Metadata over the contract's limit would get the record rejected: keep a note instead. */
export function boundMetadata(m: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!m) return undefined
  // the collector refuses deeper metadata (and serialising it may overflow the stack)
  if (!nestedWithin(m, MAX_METADATA_DEPTH)) return { llmguardNote: `metadata nested over ${MAX_METADATA_DEPTH} levels deep was dropped` }
  let json: string
  try {
    json = JSON.stringify(m)
  } catch {
    return { llmguardNote: 'metadata was not serialisable' }
  }
  if (json.length * 3 <= MAX_METADATA_BYTES || Buffer.byteLength(json, 'utf8') <= MAX_METADATA_BYTES) return m
  return { llmguardNote: 'metadata over 16 KB was dropped' }
}

/**
 * `m` with one of the SDK's own flags added (`llmguardAborted`, `llmguardBlocked`), still within
 * the contract's limit: when the flag is what pushes it over, the note replaces the app's
 * metadata and the flag stays, rather than the record being refused.
 */
export function withFlag(m: Record<string, unknown> | undefined, key: string, value: unknown): Record<string, unknown> {
  const out = { ...m, [key]: value }
  return boundMetadata(out) === out ? out : { llmguardNote: 'metadata over 16 KB was dropped', [key]: value }
}

const DAY_MS = 86_400_000
/** 9999-12-31T23:59:59.999Z and earlier: four-digit years, the only ones formatted by hand. */
const MAX_FAST_MS = 253_402_300_800_000
let cachedDay = Number.NaN
let cachedDayPrefix = ''
const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`)

/**
 * `new Date(ms).toISOString()`, with the date part cached for the day. Measured in the app's
 * call path (caches cold from the openai client's work), the Date round trip cost ~6 µs a
 * record: the largest single piece of building one. Same output for every integer ms.
 */
export function isoTimestamp(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms >= MAX_FAST_MS) return new Date(ms).toISOString()
  const day = Math.floor(ms / DAY_MS)
  if (day !== cachedDay) {
    cachedDayPrefix = new Date(day * DAY_MS).toISOString().slice(0, 11)
    cachedDay = day
  }
  let rest = ms - day * DAY_MS
  const h = Math.floor(rest / 3_600_000)
  rest -= h * 3_600_000
  const m = Math.floor(rest / 60_000)
  rest -= m * 60_000
  const s = Math.floor(rest / 1000)
  const milli = rest - s * 1000
  return `${cachedDayPrefix}${pad2(h)}:${pad2(m)}:${pad2(s)}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`
}
