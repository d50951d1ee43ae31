import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

/** Alerts older or newer than this (by `t` or the payload's `date`) are refused as replays. */
export const DATADOG_TOLERANCE_SECONDS = 300

export const SIGNATURE_HEADER = 'x-llmguard-signature'
export const SECRET_HEADER = 'x-llmguard-webhook-secret'

/** Equal-length buffers compared in constant time; different lengths are simply unequal. */
function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

/** `X-LLMGuard-Signature` for a body: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export function signDatadogPayload(secret: string, body: string | Buffer, t = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex')
  return `t=${t},v1=${mac}`
}

export type Verification =
  | { ok: true; method: 'signature'; timestamp: number }
  | { ok: true; method: 'secret' }
  | { ok: false; reason: string }

/**
 * Checks a Datadog webhook's credential: the HMAC signature header (preferred: it covers the
 * body and carries its own timestamp) or the shared secret in its own header (all that
 * Datadog's webhook UI can send; the payload's `date` then bounds its age). Both compare in
 * constant time. The timestamp window is checked by the caller (the secret style needs the
 * parsed body for it).
 */
export function verifyDatadogRequest(secret: string, headers: Record<string, string>, rawBody: Buffer): Verification {
  const signature = headers[SIGNATURE_HEADER]
  if (signature !== undefined) {
    const parts = new Map<string, string[]>()
    for (const part of signature.split(',')) {
      const eq = part.indexOf('=')
      if (eq < 0) continue
      const name = part.slice(0, eq).trim()
      parts.set(name, [...(parts.get(name) ?? []), part.slice(eq + 1).trim()])
    }
    const t = parts.get('t')?.[0]
    if (!t || !/^\d{1,12}$/.test(t)) return { ok: false, reason: 'signature header has no valid t=<unix seconds>' }
    const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest('hex'), 'utf8')
    // several v1 values are allowed, as during a secret rotation
    const candidates = parts.get('v1') ?? []
    if (!candidates.some((v) => safeEqual(Buffer.from(v.toLowerCase(), 'utf8'), expected))) return { ok: false, reason: 'signature does not match' }
    return { ok: true, method: 'signature', timestamp: Number(t) }
  }
  const given = headers[SECRET_HEADER]
  if (given !== undefined) {
    // hashing first gives equal lengths, so nothing about the secret's length leaks either
    const a = createHash('sha256').update(given).digest()
    const b = createHash('sha256').update(secret).digest()
    if (!safeEqual(a, b)) return { ok: false, reason: 'webhook secret does not match' }
    return { ok: true, method: 'secret' }
  }
  return { ok: false, reason: `send ${SIGNATURE_HEADER} or ${SECRET_HEADER}` }
}

/** True when `seconds` (unix) is within the tolerance of now. */
export function withinWindow(seconds: number, now = Date.now()): boolean {
  return Math.abs(now / 1000 - seconds) <= DATADOG_TOLERANCE_SECONDS
}
