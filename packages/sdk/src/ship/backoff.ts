export interface BackoffOptions {
  baseMs: number
  maxMs: number
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 60_000 }

/**
 * Delay before retry number `attempt` (1 = first retry): exponential with full jitter, never
 * shorter than what the collector asked for in `Retry-After`. The jitter matters: clients that
 * fail together otherwise retry together and knock the collector over again.
 */
export function backoffDelay(attempt: number, retryAfterMs: number | undefined, random: () => number, o = DEFAULT_BACKOFF): number {
  const ceiling = Math.min(o.maxMs, o.baseMs * 2 ** Math.max(0, attempt - 1))
  // half fixed, half random: never hammers, yet spreads a fleet of clients out
  const jittered = ceiling / 2 + random() * (ceiling / 2)
  if (retryAfterMs !== undefined && retryAfterMs > jittered) return retryAfterMs
  return Math.round(jittered)
}

/** `Retry-After` as seconds or an HTTP date, in ms from `now`; undefined when absent or garbage. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value
  if (!v) return undefined
  const trimmed = v.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.min(Number(trimmed) * 1000, 3_600_000)
  const at = Date.parse(trimmed)
  if (Number.isNaN(at)) return undefined
  return Math.min(Math.max(0, at - now), 3_600_000)
}
