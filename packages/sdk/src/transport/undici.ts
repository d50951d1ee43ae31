import { promisify } from 'node:util'
import { gzip as gzipCb, gzipSync, constants as zlib } from 'node:zlib'
import { batchResultSchema, createAgent, errorEnvelopeSchema, policySchema, undiciSend } from '@llmguard/shared'
import { parseRetryAfter } from '../ship/backoff.js'
import { classifyFailure, type SendResult } from '../ship/result.js'
import type { PolicyFetch, Transport } from './types.js'

const gzip = promisify(gzipCb)

/**
 * Bodies up to this size (a full batch of ~1,000 typical records, 1–3 ms of level-1 deflate) are compressed
 * on the event loop: a round trip through libuv's thread pool (stream setup, hand-off, wake-up)
 * measured 3–5× the CPU of the compression itself for a batch of a hundred records. Bigger
 * bodies, an outbox backlog, still go to the pool so the app never stalls for long.
 */
const SYNC_GZIP_MAX_CHARS = 1024 * 1024

function compress(json: string): Buffer | Promise<Buffer> {
  const options = { level: zlib.Z_BEST_SPEED }
  return json.length <= SYNC_GZIP_MAX_CHARS ? gzipSync(json, options) : gzip(json, options)
}

export interface UndiciTransportOptions {
  endpoint: string
  apiKey: string
  /** Whole-request timeout; the lease on the records outlives it. */
  timeoutMs?: number
  userAgent?: string
}

function envelope(text: string): { code?: string; message: string } {
  try {
    const parsed = errorEnvelopeSchema.safeParse(JSON.parse(text))
    if (parsed.success) return { code: parsed.data.error.code, message: parsed.data.error.message }
  } catch {
    // not JSON: a proxy's page, say
  }
  return { message: text.slice(0, 300) }
}

const errMessage = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err))
const errCode = (err: unknown) => {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : 'NETWORK_ERROR'
}

/** Ships batches (gzip, keep-alive) and fetches the policy with undici. */
export function createUndiciTransport(o: UndiciTransportOptions): Transport {
  const base = o.endpoint.replace(/\/+$/, '')
  const timeoutMs = o.timeoutMs ?? 15_000
  // sockets never hold the process open, not even with a request in flight (a flush that
  // waits holds it by a timer of its own). An Agent of our own, loaded without undici's entry
  // point (see @llmguard/shared's undici.ts): the app's fetch keeps its own dispatcher and never
  // shares code paths with the shipper
  const agent = createAgent({ keepAliveTimeout: 10_000, connections: 4, headersTimeout: timeoutMs, bodyTimeout: timeoutMs }, { unrefSockets: true })
  const auth = `Bearer ${o.apiKey}`
  const userAgent = o.userAgent ?? 'llmguard-sdk'

  return {
    async sendBatch(json: string): Promise<SendResult> {
      try {
        // level 1 is plenty for JSON text
        const body = await compress(json)
        const res = await undiciSend(agent, `${base}/v1/llm/requests/batch`, {
          method: 'POST',
          headers: {
            authorization: auth,
            'content-type': 'application/json',
            'content-encoding': 'gzip',
            'user-agent': userAgent,
          },
          body,
          timeoutMs,
        })
        const text = res.text
        if (res.statusCode === 200) {
          let parsed: ReturnType<typeof batchResultSchema.safeParse> | undefined
          try {
            parsed = batchResultSchema.safeParse(JSON.parse(text))
          } catch {
            parsed = undefined
          }
          if (parsed?.success) return { kind: 'ok', result: parsed.data }
          return { kind: 'retry', code: 'BAD_RESPONSE', message: 'the collector answered 200 with an unexpected body', status: 200 }
        }
        const env = envelope(text)
        return classifyFailure(res.statusCode, env.code, env.message, parseRetryAfter(res.headers['retry-after'], Date.now()))
      } catch (err) {
        return { kind: 'retry', code: errCode(err), message: errMessage(err) }
      }
    },

    async fetchPolicy(etag: string | undefined): Promise<PolicyFetch> {
      try {
        const headers: Record<string, string> = { authorization: auth, 'user-agent': userAgent, accept: 'application/json' }
        if (etag) headers['if-none-match'] = etag
        const res = await undiciSend(agent, `${base}/v1/llm/policy`, { method: 'GET', headers, timeoutMs })
        const text = res.text
        if (res.statusCode === 304) return { kind: 'not-modified' }
        if (res.statusCode !== 200) {
          const env = envelope(text)
          return { kind: 'error', code: env.code ?? `HTTP_${res.statusCode}`, message: env.message, status: res.statusCode }
        }
        const parsed = policySchema.safeParse(JSON.parse(text))
        if (!parsed.success) return { kind: 'error', code: 'BAD_RESPONSE', message: 'the policy did not match the schema' }
        const tag = res.headers.etag
        return { kind: 'ok', policy: parsed.data, etag: Array.isArray(tag) ? tag[0] : tag }
      } catch (err) {
        return { kind: 'error', code: errCode(err), message: errMessage(err) }
      }
    },

    async close(): Promise<void> {
      await agent.close().catch(() => undefined)
    },

    destroy(): void {
      agent.destroy().catch(() => undefined)
    },
  }
}
