import type { BatchResult } from '@llmguard/shared'

/**
 * What one batch send came to, as OpenTelemetry exporters report it: the shipper decides on
 * this union and nothing throws through the layers.
 */
export type SendResult =
  | { kind: 'ok'; result: BatchResult }
  /** network error, 408, 429 RATE_LIMITED, 5xx: the same records later */
  | { kind: 'retry'; afterMs?: number; code: string; message: string; status?: number }
  /** 413: the batch has to be smaller */
  | { kind: 'too-large'; message: string }
  /** the collector refuses these records for good (PLAN_LIMIT_EXCEEDED, or 4xx for the whole batch) */
  | { kind: 'reject'; code: string; message: string; status: number }
  /** the key or the endpoint is wrong: nothing can get through until someone fixes the config */
  | { kind: 'fatal'; code: string; message: string; status?: number; afterMs?: number }

/** Turns a collector answer (status, Retry-After, envelope code) into a SendResult. Pure. */
export function classifyFailure(status: number, code: string | undefined, message: string, retryAfterMs: number | undefined): SendResult {
  const c = code ?? `HTTP_${status}`
  // not the collector's answer at all: a redirect (an http:// endpoint sent on to https://, which
  // is not followed), or a success other than its 200. Pausing keeps the records for when the
  // endpoint is put right; parking would send every one of them to the dead letters
  if (status < 400) return { kind: 'fatal', code: c, message: status >= 300 && status < 400 ? `the endpoint redirects (${status}): set it to the URL it redirects to` : `the endpoint answered ${status}, not the collector's 200`, status }
  if (status === 413) return { kind: 'too-large', message }
  if (status === 429 && c === 'PLAN_LIMIT_EXCEEDED') return { kind: 'reject', code: c, message, status }
  if (status === 429 || status === 408 || status >= 500) {
    const r: SendResult = { kind: 'retry', code: c, message, status }
    if (retryAfterMs !== undefined) r.afterMs = retryAfterMs
    return r
  }
  // the key, or the URL: a 404 or 405 for a whole batch means the endpoint is not the collector's
  // batch route (a web server answers a POST to a static path with 405), not that the records are bad
  if (status === 401 || status === 403 || status === 404 || status === 405) return { kind: 'fatal', code: c, message, status }
  return { kind: 'reject', code: c, message, status }
}
