import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createUndiciTransport } from '../src/transport/undici.js'
import { startFakeCollector, TEST_KEY, type FakeCollector } from './fakes/collector-server.js'

let collector: FakeCollector
beforeAll(async () => {
  collector = await startFakeCollector()
})
afterAll(async () => {
  await collector.close()
})

const record = (prompt: string) => JSON.stringify({ id: randomUUID(), prompt, model: 'gpt-4o-mini', latency: 12, timestamp: new Date().toISOString(), status: 'success' })
const body = (records: string[]) => `{"records":[${records.join(',')}]}`

describe('undici transport', () => {
  // a batch up to 1 MiB is compressed on the event loop, a bigger one on the thread pool:
  // the collector must get valid gzip either way
  it.each([
    ['small (compressed inline)', 3, 'hello'],
    ['over 1 MiB (compressed on the thread pool)', 40, 'x'.repeat(40_000)],
  ])('delivers a gzip batch: %s', async (_name, n, prompt) => {
    const t = createUndiciTransport({ endpoint: collector.url, apiKey: TEST_KEY })
    try {
      const records = Array.from({ length: n }, () => record(prompt))
      const json = body(records)
      expect(json.length > 1024 * 1024).toBe(n === 40)
      const res = await t.sendBatch(json)
      expect(res).toEqual({ kind: 'ok', result: { accepted: n, duplicates: 0, rejected: [] } })
      for (const r of records) expect(collector.stored.get(JSON.parse(r).id)).toMatchObject({ prompt })
    } finally {
      await t.close()
    }
  })
})

describe('undici transport against a collector that never answers', () => {
  it('gives up after requestTimeoutMs: the batch is retried later and the policy fetch reports it', async () => {
    const { createServer } = await import('node:http')
    const sockets = new Set<import('node:net').Socket>()
    const hang = createServer(() => {})
    hang.on('connection', (s) => sockets.add(s))
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r))
    const t = createUndiciTransport({ endpoint: `http://127.0.0.1:${(hang.address() as { port: number }).port}`, apiKey: TEST_KEY, timeoutMs: 300 })
    try {
      const started = Date.now()
      expect(await t.sendBatch(body([record('late')]))).toMatchObject({ kind: 'retry', code: 'REQUEST_TIMEOUT' })
      expect(await t.fetchPolicy(undefined)).toMatchObject({ kind: 'error', code: 'REQUEST_TIMEOUT' })
      expect(Date.now() - started).toBeLessThan(3_000)
    } finally {
      await t.close()
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => hang.close(() => r()))
    }
  })
})
