import { createServer, type Server } from 'node:http'
import { createRequire } from 'node:module'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAgent, loadUndici, undiciIsPrivate, undiciRequest } from '../src/undici.js'

const require = createRequire(import.meta.url)
let server: Server
let base: string

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      res.writeHead(201, { 'content-type': 'application/json', 'x-seen': `${req.method} ${req.url}` })
      res.end(JSON.stringify({ body }))
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
})
afterAll(() => new Promise<void>((r) => server.close(() => r())))

describe('undici without its entry point', () => {
  it('loads the Agent and request() from the package files, not the entry point', () => {
    const loaded: string[] = []
    const parts = loadUndici((id) => {
      loaded.push(id)
      return require(id)
    })
    expect(parts.private).toBe(true)
    expect(loaded).not.toContain('undici')
    expect(undiciIsPrivate()).toBe(true)
  })

  it('sends method, path, query, headers and body on the given Agent', async () => {
    const agent = createAgent({ keepAliveTimeout: 1_000 })
    try {
      const res = await undiciRequest(`${base}/v1/x?a=1&b=two`, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' })
      expect(res.statusCode).toBe(201)
      expect(res.headers['x-seen']).toBe('POST /v1/x?a=1&b=two')
      expect(await res.body.json()).toEqual({ body: 'hello' })
    } finally {
      await agent.close()
    }
  })

  it('falls back to the entry point when the files have moved, with the same behaviour', async () => {
    const parts = loadUndici((id) => {
      if (id !== 'undici') throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' })
      return require(id)
    })
    expect(parts.private).toBe(false)
    const agent = new parts.Agent({ keepAliveTimeout: 1_000 })
    try {
      const u = new URL(`${base}/fallback?q=1`)
      const res = await parts.request.call(agent, { origin: u.origin, path: `${u.pathname}${u.search}`, method: 'PUT', body: 'b' })
      expect(res.statusCode).toBe(201)
      expect(res.headers['x-seen']).toBe('PUT /fallback?q=1')
      expect(await res.body.json()).toEqual({ body: 'b' })
    } finally {
      await agent.close()
    }
  })
})
