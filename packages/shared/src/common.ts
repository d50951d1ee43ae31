import { z } from 'zod'

/** Every resource id is a UUID; anything else in a path is treated as "no such resource". */
export const idSchema = z.uuid()

/**
 * Times the API takes in (record timestamps, date filters) lie from 1970-01-01 to the end of
 * 9999, UTC. The ISO format alone allows year 0000, which PostgreSQL refuses, and with a
 * negative offset an instant in the UTC year 10000, which it stores but no four-digit ISO
 * string can give back: both ended in a 500 (and a record in a batch took its batch with it).
 * PostgreSQL also refuses UTC offsets of 16 hours or more (the format allows up to 23:59) and
 * strings past 128 characters; it keeps microseconds, so nine digits of a second (nanoseconds)
 * is the most any clock sends and the most taken.
 */
const MIN_TIME_MS = Date.UTC(1970, 0, 1)
const MAX_TIME_MS = Date.UTC(10000, 0, 1)
const TIME_RANGE_MESSAGE = 'must be between 1970-01-01 and 9999-12-31 (UTC)'
const OFFSET_MESSAGE = 'must have a UTC offset within ±15:59'
export const MAX_FRACTION_DIGITS = 9
const FRACTION_MESSAGE = `must have at most ${MAX_FRACTION_DIGITS} digits of fractional seconds`
const ISO_DATE_TIME = z.regexes.datetime({ offset: true })

/**
 * The fraction of a second of an ISO date-time (`…:SS.fraction…`, the seconds at index 17–18)
 * in microseconds, rounded as PostgreSQL rounds it (`rint(fraction × 10⁶)`, halves to even):
 * 0 to 1,000,000, where 1,000,000 carries into the next second.
 */
export function fractionMicros(iso: string): number {
  if (iso.charCodeAt(19) !== 46 /* . */) return 0
  let end = 20
  while (end < iso.length && iso.charCodeAt(end) >= 48 && iso.charCodeAt(end) <= 57) end++
  const x = Number(`0${iso.slice(19, end)}`) * 1_000_000
  const r = Math.round(x)
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r
}

/** The instant of an API date-time as PostgreSQL stores it: whole seconds and microseconds. */
function storedInstant(iso: string): [number, number] {
  const second = Math.floor(Date.parse(iso) / 1000)
  const micros = fractionMicros(iso)
  return micros === 1_000_000 ? [second + 1, 0] : [second, micros]
}

/**
 * Orders two valid API date-times to the microsecond, as PostgreSQL compares them once stored
 * (Date.parse stops at the millisecond): negative when `a` is earlier, 0 when the same instant.
 */
export function compareIso(a: string, b: string): number {
  const [sa, ma] = storedInstant(a)
  const [sb, mb] = storedInstant(b)
  return sa !== sb ? sa - sb : ma - mb
}

/**
 * What is wrong with a date-time for the API (the ISO form
 * `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` and the rules above), or undefined when nothing is.
 */
export function timeProblem(iso: string): string | undefined {
  return ISO_DATE_TIME.test(iso) ? problemOfMatched(iso) : 'must be an ISO 8601 date-time with a UTC offset'
}

/** timeProblem for a string that matched the format. */
function problemOfMatched(iso: string): string | undefined {
  const zone = iso.endsWith('Z') ? iso.length - 1 : iso.length - 6
  if (zone === iso.length - 6 && (iso.charCodeAt(zone + 1) - 48) * 10 + iso.charCodeAt(zone + 2) - 48 > 15) return OFFSET_MESSAGE
  // the fraction, if any, runs from the '.' after the seconds (index 19) to the zone
  if (iso.charCodeAt(19) === 46 && zone - 20 > MAX_FRACTION_DIGITS) return FRACTION_MESSAGE
  // the second of the instant as stored: Date.parse keeps the fraction's whole milliseconds,
  // PostgreSQL rounds it to microseconds, and …59.9999995 is the next second (maybe of the year
  // 10000). The offsets are whole minutes, so the second is the parsed time floored. The range
  // ends are whole seconds: the second decides. Only a fraction of 7 or more digits can round up
  // (every record is checked here: the common millisecond timestamp skips the rounding).
  const carries = zone - 20 > 6 && fractionMicros(iso) === 1_000_000
  const second = Math.floor(Date.parse(iso) / 1000) * 1000 + (carries ? 1000 : 0)
  if (!(second >= MIN_TIME_MS && second < MAX_TIME_MS)) return TIME_RANGE_MESSAGE
  return undefined
}

/**
 * The format's pattern as /openapi.json gives it, with the offset and fraction limits in it (a
 * generated client checks them before sending); the year range is in docs/api.md.
 */
export const API_DATE_TIME_PATTERN = ISO_DATE_TIME.source
  .replace('(?:\\.\\d+)?', `(?:\\.\\d{1,${MAX_FRACTION_DIGITS}})?`)
  .replace('[+-](?:[01]\\d|2[0-3]):[0-5]\\d', '[+-](?:0\\d|1[0-5]):[0-5]\\d')

/** An ISO 8601 date-time within the API's rules (see timeProblem). */
export const isoDateSchema = z.iso
  .datetime({ offset: true })
  .superRefine((iso, ctx) => {
    // the format's own issue is enough for a string that does not match it
    if (!ISO_DATE_TIME.test(iso)) return
    const problem = problemOfMatched(iso)
    if (problem) ctx.addIssue({ code: 'custom', message: problem })
  })
  .meta({ pattern: API_DATE_TIME_PATTERN })

export const MAX_PAGE_LIMIT = 100
export const DEFAULT_PAGE_LIMIT = 50
/** Totals are exact up to this count and then reported capped (counting more costs a scan). */
export const TOTAL_CAP = 10_000

/** A query string's whole-number digits as a number; anything else is left for the schema to refuse. */
const digits = (v: unknown) => (typeof v === 'string' && /^[+-]?\d{1,16}$/.test(v) ? Number(v) : v)
// the type's message only for a value that is not a whole number: a schema-wide `message` would
// also stand in for the range checks' own, and `limit=0` would read "must be a whole number"
const wholeNumber = (min: number, max: number) =>
  z
    .int({ error: (issue) => (issue.code === 'invalid_type' ? 'must be a whole number' : undefined) })
    .min(min, { message: `must be at least ${min}` })
    .max(max, { message: `must be at most ${max}` })

/**
 * A query-string integer: it arrives as a string, which must be whole-number digits (an empty
 * value, spaces, `0x10`, `1e3` or `1.5` are errors, where Number() would have made 0, 16 or
 * 1000 of them and filtered silently); out-of-range values are errors, never clamped.
 */
export const queryInt = (min: number, max: number) => z.preprocess(digits, wholeNumber(min, max))

/**
 * queryInt with a default. The default is also on the inner schema's metadata: the OpenAPI
 * document shows a preprocessed value as its inner schema, and would leave the default out.
 */
export const queryIntOr = (min: number, max: number, fallback: number) =>
  z.preprocess(digits, wholeNumber(min, max).meta({ default: fallback })).default(fallback)

export const paginationQuerySchema = z.object({
  page: queryIntOr(1, 1_000_000, 1),
  limit: queryIntOr(1, MAX_PAGE_LIMIT, DEFAULT_PAGE_LIMIT),
})
export type PaginationQuery = z.infer<typeof paginationQuerySchema>

export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({
    items: z.array(item),
    page: z.number().int(),
    limit: z.number().int(),
    total: z.number().int(),
    totalCapped: z.boolean(),
  })
}
export interface Page<T> {
  items: T[]
  page: number
  limit: number
  total: number
  totalCapped: boolean
}

export const healthSchema = z.object({ status: z.literal('ok') })
export const readinessSchema = z.object({
  status: z.enum(['ready', 'not_ready']),
  database: z.enum(['up', 'down']),
  /** `unknown` while the database does not answer: whether migrations are applied cannot be told then. */
  migrations: z.enum(['applied', 'pending', 'unknown']),
  version: z.string(),
})
export type Readiness = z.infer<typeof readinessSchema>

/** How deep metadata (records, project settings) may nest: far beyond real use, well within what serialising it can take. */
export const MAX_METADATA_DEPTH = 32

/**
 * Whether a JSON-like value nests objects and arrays no deeper than `max`, walked with a stack
 * of its own: a value nested thousands deep (a few KB of JSON) would overflow the call stack of
 * JSON.stringify and of anything recursive after it.
 */
export function nestedWithin(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]]
  while (stack.length) {
    const [v, depth] = stack.pop()!
    if (v === null || typeof v !== 'object') continue
    if (depth >= max) return false
    for (const key in v) stack.push([(v as Record<string, unknown>)[key], depth + 1])
  }
  return true
}

/**
 * The first `max` UTF-16 units of `text`, or one fewer where the cut would split a surrogate
 * pair (an emoji, most CJK extensions): half a pair is an unpaired surrogate, which PostgreSQL's
 * jsonb refuses, so a cut string stored in jsonb (a risk reason's detail, an incident's metadata)
 * would fail its whole statement.
 */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text
  if (!(max > 0)) return ''
  const last = text.charCodeAt(max - 1)
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max)
}
