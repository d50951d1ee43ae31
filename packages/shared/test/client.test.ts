import { createServer, type Server } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, ApiError } from '../src/client.js'

let server: Server
let base: string
const seen: { method?: string; url?: string; auth?: string; body: string }[] = []

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, body })
      if (req.url?.startsWith('/fail')) {
        res.writeHead(409, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: { code: 'CONFLICT', message: 'taken', details: { field: 'email' }, timestamp: new Date().toISOString(), requestId: 'r1' } }))
      } else if (req.url === '/html') {
        res.writeHead(502, { 'content-type': 'text/html' })
        res.end('<html>bad gateway</html>')
      } else if (req.url === '/empty') {
        res.writeHead(204)
        res.end()
      } else {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ ok: true, echo: body ? JSON.parse(body) : null }))
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
})

afterAll(() => new Promise<void>((r) => server.close(() => r())))

describe('ApiClient', () => {
  it('sends JSON with the bearer token and query, and parses the answer', async () => {
    const client = new ApiClient({ baseUrl: `${base}/`, token: () => 'jwt-1' })
    const data = await client.post<{ echo: unknown }>('/things', { a: 1 }, { query: { page: 2, skip: undefined } })
    expect(data.echo).toEqual({ a: 1 })
    const last = seen.at(-1)!
    expect(last).toMatchObject({ method: 'POST', url: '/things?page=2', auth: 'Bearer jwt-1' })
    await client.close()
  })

  it('turns an error envelope into an ApiError with its code', async () => {
    const client = new ApiClient({ baseUrl: base, token: 'lg_x' })
    const err = await client.get('/fail').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err).toMatchObject({ code: 'CONFLICT', status: 409, message: 'taken', requestId: 'r1', details: { field: 'email' } })
    const html = await client.get('/html').catch((e: unknown) => e)
    expect(html).toMatchObject({ code: 'HTTP_ERROR', status: 502, message: `${base} answered 502 without an LLMGuard error body: is it the collector's URL?` })
    expect(await client.delete('/empty')).toBeUndefined()
    await client.close()
  })

  it('names an unreachable collector and its URL', async () => {
    const client = new ApiClient({ baseUrl: 'http://127.0.0.1:1', timeoutMs: 2000 })
    const err = await client.get('/healthz').catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'UNREACHABLE', status: 0 })
    expect((err as Error).message).toContain('http://127.0.0.1:1')
    await client.close()
  })
})
