import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { gunzipSync } from 'node:zlib'
import { DEFAULT_POLICY, batchRequestSchema, llmRecordSchema, MAX_BATCH_RECORDS, type Policy } from '@llmguard/shared'

export const TEST_KEY = 'lg_7f3c2a1e-4b5d-4c6e-8f90-123456789abc'

/** A scripted answer for the next batch request. */
export interface CollectorReply {
  status: number
  code: string
  retryAfter?: number
  delayMs?: number
}

export interface FakeCollector {
  url: string
  port: number
  /** stored records by id (duplicates collapse, as the real collector's idempotency does) */
  stored: Map<string, Record<string, unknown>>
  /** every batch request as received: record count and answer status */
  batches: { count: number; status: number; at: number }[]
  /** how many times each id arrived (to see retries) */
  arrivals: Map<string, number>
  policyRequests: { ifNoneMatch: string | undefined; status: number }[]
  script: CollectorReply[]
  /** 413 for bodies over this many bytes (after gunzip); the real limit is 5 MB */
  maxBodyBytes: number
  /** ids rejected one by one with this code */
  rejectIds: Map<string, string>
  /** records past this many are rejected with PLAN_LIMIT_EXCEEDED */
  planLimit: number
  /** delay for every batch answer */
  batchDelayMs: number
  policy: Policy
  setPolicy(p: Partial<Policy>): void
  /** Answers the test key as the real collector answers a revoked one (403 INVALID_API_KEY). */
  keyRevoked: boolean
  /** Closes the port (connection refused) until start(). */
  stop(): Promise<void>
  start(): Promise<void>
  close(): Promise<void>
}

function envelope(code: string, message: string) {
  return JSON.stringify({ error: { code, message, details: {}, timestamp: new Date().toISOString(), requestId: 'req-fake' } })
}

function readRaw(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

/** A loopback collector implementing the two endpoints the SDK uses, faithfully to the contract. */
export async function startFakeCollector(options: { port?: number; trust?: boolean } = {}): Promise<FakeCollector> {
  const sockets = new Set<Socket>()
  let server: Server | undefined
  const c: FakeCollector = {
    url: '',
    port: options.port ?? 0,
    stored: new Map(),
    batches: [],
    arrivals: new Map(),
    policyRequests: [],
    script: [],
    maxBodyBytes: 5 * 1024 * 1024,
    rejectIds: new Map(),
    planLimit: Infinity,
    batchDelayMs: 0,
    policy: { ...DEFAULT_POLICY },
    keyRevoked: false,
    setPolicy(p) {
      c.policy = { ...c.policy, ...p, version: c.policy.version + 1 }
    },
    async stop() {
      if (!server) return
      const s = server
      server = undefined
      for (const sock of sockets) sock.destroy()
      await new Promise<void>((r) => s.close(() => r()))
    },
    async start() {
      if (server) return
      server = createServer((req, res) => void handle(req, res))
      server.on('connection', (s) => {
        sockets.add(s)
        s.on('close', () => sockets.delete(s))
      })
      await new Promise<void>((r) => server!.listen(c.port, '127.0.0.1', r))
      c.port = (server.address() as AddressInfo).port
      c.url = `http://127.0.0.1:${c.port}`
    },
    async close() {
      await c.stop()
    },
  }

  async function handle(req: IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
    const send = (status: number, body: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers })
      res.end(body)
    }
    const raw = await readRaw(req)
    const auth = req.headers.authorization
    const key = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined
    if (!key) return send(401, envelope('UNAUTHORIZED', 'missing API key'))
    if (!/^lg_[0-9a-f-]{36}$/.test(key) || key !== TEST_KEY || c.keyRevoked) return send(403, envelope('INVALID_API_KEY', 'invalid API key'))

    if (req.method === 'GET' && req.url === '/v1/llm/policy') {
      const etag = `"${c.policy.version}"`
      const inm = req.headers['if-none-match']
      if (inm === etag) {
        c.policyRequests.push({ ifNoneMatch: inm, status: 304 })
        res.writeHead(304, { etag })
        return void res.end()
      }
      c.policyRequests.push({ ifNoneMatch: inm, status: 200 })
      return send(200, JSON.stringify(c.policy), { etag })
    }

    if (req.method === 'POST' && req.url === '/v1/llm/requests/batch') {
      if (c.batchDelayMs) await new Promise((r) => setTimeout(r, c.batchDelayMs))
      let body: Buffer
      try {
        body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw
      } catch {
        return send(400, envelope('MALFORMED_JSON', 'bad gzip'))
      }
      let parsedJson: unknown
      try {
        parsedJson = JSON.parse(body.toString('utf8'))
      } catch {
        return send(400, envelope('MALFORMED_JSON', 'body is not JSON'))
      }
      const count = Array.isArray((parsedJson as { records?: unknown[] })?.records) ? (parsedJson as { records: unknown[] }).records.length : 0
      const scripted = c.script.shift()
      if (scripted) {
        if (scripted.delayMs) await new Promise((r) => setTimeout(r, scripted.delayMs))
        c.batches.push({ count, status: scripted.status, at: Date.now() })
        const headers: Record<string, string> = scripted.retryAfter !== undefined ? { 'retry-after': String(scripted.retryAfter) } : {}
        return send(scripted.status, envelope(scripted.code, `scripted ${scripted.code}`), headers)
      }
      if (body.length > c.maxBodyBytes) {
        c.batches.push({ count, status: 413, at: Date.now() })
        return send(413, envelope('PAYLOAD_TOO_LARGE', 'body over the limit'))
      }
      const batch = batchRequestSchema.safeParse(parsedJson)
      if (!batch.success || batch.data.records.length > MAX_BATCH_RECORDS) {
        c.batches.push({ count, status: 400, at: Date.now() })
        return send(400, envelope('VALIDATION_ERROR', 'bad batch'))
      }
      let accepted = 0
      let duplicates = 0
      const rejected: { index: number; code: string; message: string }[] = []
      batch.data.records.forEach((r, index) => {
        const id = (r as { id?: string }).id
        if (id) c.arrivals.set(id, (c.arrivals.get(id) ?? 0) + 1)
        const forced = id ? c.rejectIds.get(id) : undefined
        if (forced) return void rejected.push({ index, code: forced, message: `rejected: ${forced}` })
        // the benchmark's collector skips validation: its CPU would otherwise count against the SDK
        const parsed = options.trust ? ({ success: true, data: r as { id?: string } } as const) : llmRecordSchema.safeParse(r)
        if (!parsed.success) return void rejected.push({ index, code: 'VALIDATION_ERROR', message: parsed.error.issues[0]?.message ?? 'invalid' })
        const rid = parsed.data.id ?? crypto.randomUUID()
        if (c.stored.has(rid)) return void duplicates++
        if (c.stored.size >= c.planLimit) return void rejected.push({ index, code: 'PLAN_LIMIT_EXCEEDED', message: 'monthly limit reached' })
        c.stored.set(rid, parsed.data as Record<string, unknown>)
        accepted++
      })
      c.batches.push({ count, status: 200, at: Date.now() })
      return send(200, JSON.stringify({ accepted, duplicates, rejected }))
    }
    send(404, envelope('NOT_FOUND', 'no such route'))
  }

  await c.start()
  return c
}
