import { createServer, type Server } from 'node:http'
import { createRequire } from 'node:module'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAgent, loadUndici, undiciIsPrivate, undiciSend, UndiciResponseTooLargeError, UndiciTimeoutError } from '../src/undici.js'

const require = createRequire(import.meta.url)
let server: Server
let base: string
const agent = createAgent({ keepAliveTimeout: 1_000 })

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      if (req.url === '/hang') return // never answers
      if (req.url?.startsWith('/big')) {
        res.writeHead(200, { 'content-type': 'text/plain' })
        // in several chunks, so the limit trips midway
        for (let i = 0; i < 8; i++) res.write('x'.repeat(16 * 1024))
        return res.end()
      }
      res.writeHead(201, { 'content-type': 'application/json', 'x-seen': `${req.method} ${req.url}` })
      res.end(JSON.stringify({ body, agent: req.headers['user-agent'] }))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
})
afterAll(async () => {
  await agent.destroy()
  server.closeAllConnections()
  await new Promise<void>((r) => server.close(() => r()))
})

describe('undici without its entry point', () => {
  it('loads the Agent from the package file, not the entry point', () => {
    const loaded: string[] = []
    const parts = loadUndici((id) => {
      loaded.push(id)
      return require(id)
    })
    expect(parts.private).toBe(true)
    expect(loaded).toEqual(['undici/lib/dispatcher/agent.js'])
    expect(undiciIsPrivate()).toBe(true)
  })

  it('falls back to the entry point when the file has moved', () => {
    const parts = loadUndici((id) => {
      if (id !== 'undici') throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' })
      return require(id)
    })
    expect(parts.private).toBe(false)
    expect(parts.Agent).toBe(require('undici').Agent)
  })

  it('sends method, path, query, headers and body, and collects the answer as text', async () => {
    const res = await undiciSend(agent, `${base}/v1/x?a=1&b=two`, { method: 'POST', headers: { 'content-type': 'text/plain', 'user-agent': 'test-agent' }, body: 'hello', timeoutMs: 5_000 })
    expect(res.statusCode).toBe(201)
    expect(res.headers['x-seen']).toBe('POST /v1/x?a=1&b=two')
    expect(JSON.parse(res.text)).toEqual({ body: 'hello', agent: 'test-agent' })
    // a Buffer body too, on the same kept-alive connection
    const again = await undiciSend(agent, new URL(`${base}/y`), { method: 'PUT', headers: {}, body: Buffer.from('bytes'), timeoutMs: 5_000 })
    expect(again.headers['x-seen']).toBe('PUT /y')
    expect(JSON.parse(again.text).body).toBe('bytes')
  })

  it('gives up on a server that never answers after timeoutMs, with a REQUEST_TIMEOUT error', async () => {
    const started = Date.now()
    const err = await undiciSend(agent, `${base}/hang`, { method: 'GET', headers: {}, timeoutMs: 300 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UndiciTimeoutError)
    expect(err).toMatchObject({ code: 'REQUEST_TIMEOUT' })
    expect(Date.now() - started).toBeGreaterThanOrEqual(290)
    expect(Date.now() - started).toBeLessThan(3_000)
    // the agent still works afterwards
    expect((await undiciSend(agent, `${base}/ok`, { method: 'GET', headers: {}, timeoutMs: 5_000 })).statusCode).toBe(201)
  })

  it('times out while the connection is still being made (a network that drops packets)', async () => {
    // a real Agent whose connector never completes, as when SYNs go unanswered
    const blackhole = createAgent({ connect: () => {} })
    try {
      const started = Date.now()
      const err = await undiciSend(blackhole, 'http://192.0.2.1/', { method: 'GET', headers: {}, timeoutMs: 200 }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(UndiciTimeoutError)
      expect(Date.now() - started).toBeLessThan(2_000)
    } finally {
      await blackhole.destroy()
    }
  })

  it('aborts an answer larger than maxResponseBytes', async () => {
    const err = await undiciSend(agent, `${base}/big`, { method: 'GET', headers: {}, timeoutMs: 5_000, maxResponseBytes: 40_000 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UndiciResponseTooLargeError)
    expect(err).toMatchObject({ code: 'RESPONSE_TOO_LARGE' })
    // at the limit's side: the whole 128 KiB is read when allowed
    const ok = await undiciSend(agent, `${base}/big2`, { method: 'GET', headers: {}, timeoutMs: 5_000, maxResponseBytes: 128 * 1024 })
    expect(ok.text.length).toBe(128 * 1024)
  })

  it('rejects with the connection error when nothing listens', async () => {
    const err = await undiciSend(agent, 'http://127.0.0.1:9/', { method: 'GET', headers: {}, timeoutMs: 5_000 }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ECONNREFUSED' })
  })
})
