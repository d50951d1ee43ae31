import { gzipSync } from 'node:zlib'
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { z } from 'zod'
import { idSchema } from '@llmguard/shared'
import { HttpServer } from '../src/http/server.js'
import { defineRoute, reply } from '../src/http/route.js'
import { AppError } from '../src/http/errors.js'
import { createLogger } from '../src/logger.js'
import { freePort } from './helpers/collector.js'

const LIMIT = 64 * 1024
let server: HttpServer
let base: string
const seen: string[] = []

beforeAll(async () => {
  server = new HttpServer({
    config: { bodyLimitBytes: LIMIT, corsOrigins: ['https://app.example.com'], trustProxyHops: 1, production: true },
    logger: createLogger('silent'),
  })
  server.register(
    defineRoute({
      method: 'POST',
      path: '/things',
      auth: 'none',
      summary: 'create a thing',
      tags: ['test'],
      body: z.object({ name: z.string().min(1).max(20), size: z.number().int().optional() }),
      responses: { 201: z.object({ name: z.string() }) },
      handler: ({ body, ip }) => {
        seen.push(body.name)
        return reply(201, { name: body.name, ip })
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/things/:id',
      auth: 'none',
      summary: 'one thing',
      tags: ['test'],
      params: z.object({ id: idSchema }),
      query: z.object({ limit: z.coerce.number().int().min(1).max(100).default(50) }),
      responses: { 200: z.object({ id: z.string(), limit: z.number() }) },
      handler: ({ params, query }) => ({ id: params.id, limit: query.limit }),
    }),
    defineRoute({
      method: 'GET',
      path: '/boom',
      auth: 'none',
      summary: 'throws',
      tags: ['test'],
      responses: { 200: null },
      handler: () => {
        throw new Error('secret internals /etc/passwd')
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/limited',
      auth: 'none',
      summary: 'throws a 429',
      tags: ['test'],
      responses: { 200: null },
      handler: () => {
        throw new AppError('RATE_LIMITED', 'slow down', undefined, { 'retry-after': '7' })
      },
    }),
    defineRoute({
      method: 'PATCH',
      path: '/limited',
      auth: 'none',
      summary: 'a second method on a path',
      tags: ['test'],
      responses: { 204: null },
      handler: () => reply(204, null),
    }),
    defineRoute({
      method: 'POST',
      path: '/things/:id/poke',
      auth: 'none',
      summary: 'a bodyless POST',
      tags: ['test'],
      params: z.object({ id: idSchema }),
      responses: { 200: z.object({ poked: z.string() }) },
      handler: ({ params }) => {
        seen.push(`poke ${params.id}`)
        return { poked: params.id }
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/private',
      auth: 'user',
      summary: 'needs a user',
      tags: ['test'],
      responses: { 200: null },
      handler: () => ({ ok: true }),
    }),
  )
  const port = await server.listen(0, '127.0.0.1')
  base = `http://127.0.0.1:${port}`
})

afterAll(async () => {
  await server.close(1000)
})

/** A JSON client's request: a body goes with `Content-Type: application/json` unless `headers` say otherwise. */
async function call(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}) {
  const res = await request(base + path, { method: method as 'GET', body, headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers } })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, json: text ? JSON.parse(text) : undefined }
}

function expectEnvelope(json: any, code: string) {
  expect(json.error.code).toBe(code)
  expect(typeof json.error.message).toBe('string')
  expect(typeof json.error.requestId).toBe('string')
  expect(new Date(json.error.timestamp).toString()).not.toBe('Invalid Date')
}

describe('http route layer', () => {
  it('validates and serves a good request', async () => {
    const res = await call('POST', '/things', JSON.stringify({ name: 'a' }), { 'content-type': 'application/json' })
    expect(res.status).toBe(201)
    expect(res.json.name).toBe('a')
    expect(res.headers['x-request-id']).toMatch(/[0-9a-f-]{36}/)
    expect(res.headers['strict-transport-security']).toContain('max-age=')
  })

  it('answers malformed JSON with a 400 envelope and stores nothing', async () => {
    const before = seen.length
    const res = await call('POST', '/things', '{"name": "a"', { 'content-type': 'application/json' })
    expect(res.status).toBe(400)
    expectEnvelope(res.json, 'MALFORMED_JSON')
    expect(seen.length).toBe(before)
  })

  it('refuses a body that is not UTF-8 with a 400 instead of storing U+FFFD in its place', async () => {
    const before = seen.length
    for (const bytes of [Buffer.from([0x7b, 0x22, 0x6e, 0x61, 0x6d, 0x65, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), Buffer.from('{"name":"caf\xe9"}', 'latin1')]) {
      const res = await call('POST', '/things', bytes, { 'content-type': 'application/json' })
      expect(res.status).toBe(400)
      expectEnvelope(res.json, 'MALFORMED_JSON')
      expect(res.json.error.message).toContain('UTF-8')
    }
    expect(seen.length).toBe(before)
    // the same text as UTF-8 is fine
    expect((await call('POST', '/things', Buffer.from('{"name":"café"}'), { 'content-type': 'application/json' })).status).toBe(201)
  })

  it('answers a failed validation with issues naming the field', async () => {
    const res = await call('POST', '/things', JSON.stringify({ name: '', size: 'big' }))
    expect(res.status).toBe(400)
    expectEnvelope(res.json, 'VALIDATION_ERROR')
    const paths = res.json.error.details.issues.map((i: { path: string }) => i.path)
    expect(paths).toEqual(expect.arrayContaining(['body.name', 'body.size']))
  })

  it('refuses a NUL character in the body (values and keys, at any depth) or the query with a 400 naming where', async () => {
    const before = seen.length
    const named = await call('POST', '/things', JSON.stringify({ name: 'a\u0000b' }))
    expect(named.status).toBe(400)
    expectEnvelope(named.json, 'VALIDATION_ERROR')
    expect(named.json.error.details.issues).toEqual([{ path: 'body.name', message: 'must not contain NUL characters (\\u0000)' }])
    const nested = await call('POST', '/things', JSON.stringify({ name: 'ok', extra: [{ deep: ['fine', 'x\u0000'] }] }))
    expect(nested.json.error.details.issues[0].path).toBe('body.extra.0.deep.1')
    const key = await call('POST', '/things', JSON.stringify({ name: 'ok', extra: { ['k\u0000']: 1 } }))
    expect(key.json.error.details.issues[0].path).toBe('body.extra.k\\u0000')
    // nesting deeper than any call stack: still a clean answer
    const deep = await call('POST', '/things', `{"name":"ok","extra":${'['.repeat(30_000)}"\\u0000"${']'.repeat(30_000)}}`)
    expect(deep.status).toBe(400)
    expect(deep.json.error.message).toContain('NUL')
    expect(seen.length).toBe(before)
    const query = await call('GET', '/things/00000000-0000-4000-8000-000000000000?limit=5%00')
    expect(query.status).toBe(400)
    expect(query.json.error.details.issues[0].path).toBe('query.limit')
  })

  it('answers an empty body where one is required with a 400', async () => {
    const res = await call('POST', '/things')
    expect(res.status).toBe(400)
    expectEnvelope(res.json, 'VALIDATION_ERROR')
  })

  it('rejects a body over the limit by Content-Length with a 413 envelope', async () => {
    const before = seen.length
    const big = JSON.stringify({ name: 'x', pad: 'y'.repeat(LIMIT) })
    const res = await call('POST', '/things', big)
    expect(res.status).toBe(413)
    expectEnvelope(res.json, 'PAYLOAD_TOO_LARGE')
    expect(seen.length).toBe(before)
  })

  it('counts a chunked body as it arrives: 413 just past the limit, dropped connection far past it', async () => {
    const chunk = Buffer.alloc(16 * 1024, 'a')
    async function* upload(chunks: number) {
      for (let i = 0; i < chunks; i++) yield chunk
    }
    const over = await request(base + '/things', { method: 'POST', body: Readable.from(upload(8)) }) // 128 KB, limit 64 KB
    expect(over.statusCode).toBe(413)
    expectEnvelope(await over.body.json(), 'PAYLOAD_TOO_LARGE')
    // 64 MB if nobody stopped it: the server cuts the connection instead of draining it all
    await expect(request(base + '/things', { method: 'POST', body: Readable.from(upload(4096)) }).then((r) => r.body.text())).rejects.toThrow()
    const after = await call('POST', '/things', JSON.stringify({ name: 'after' }))
    expect(after.status).toBe(201)
  })

  it('accepts a gzip body and bounds its decompressed size', async () => {
    const ok = await call('POST', '/things', gzipSync(JSON.stringify({ name: 'zipped' })), { 'content-encoding': 'gzip' })
    expect(ok.status).toBe(201)
    expect(ok.json.name).toBe('zipped')
    // 1 MB of spaces compresses to about 1 KB: a tiny request that would expand past the limit
    const bomb = gzipSync(Buffer.from(`{"name":"b"${' '.repeat(1024 * 1024)}}`))
    expect(bomb.byteLength).toBeLessThan(LIMIT)
    const res = await call('POST', '/things', bomb, { 'content-encoding': 'gzip' })
    expect(res.status).toBe(413)
    expectEnvelope(res.json, 'PAYLOAD_TOO_LARGE')
    const garbage = await call('POST', '/things', Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' })
    expect(garbage.status).toBe(400)
    const br = await call('POST', '/things', Buffer.from('{}'), { 'content-encoding': 'br' })
    expect(br.status).toBe(415)
    expectEnvelope(br.json, 'UNSUPPORTED_MEDIA_TYPE')
  })

  it('takes a body only as JSON: another Content-Type, or none, is a 415 and nothing is stored', async () => {
    const body = (name: string) => JSON.stringify({ name })
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', '']) {
      const res = await call('POST', '/things', body(`as ${type || 'none'}`), { 'content-type': type })
      expect(res.status, type).toBe(415)
      expectEnvelope(res.json, 'UNSUPPORTED_MEDIA_TYPE')
    }
    const none = await request(base + '/things', { method: 'POST', body: body('no header') })
    expect(none.statusCode).toBe(415)
    expect(((await none.body.json()) as { error: { message: string } }).error.message).toContain('Content-Type: application/json')
    expect(seen.filter((n) => n.startsWith('as ') || n === 'no header')).toEqual([])
    for (const [i, type] of ['application/json; charset=utf-8', 'Application/JSON', 'application/merge-patch+json'].entries()) {
      const res = await call('POST', '/things', body(`typed ${i}`), { 'content-type': type })
      expect(res.status, type).toBe(201)
    }
    // no body, no Content-Type needed
    expect((await call('POST', '/things', undefined)).status).toBe(400)
  })

  it('answers an unknown route with a 404 envelope', async () => {
    const res = await call('GET', '/nowhere')
    expect(res.status).toBe(404)
    expectEnvelope(res.json, 'NOT_FOUND')
  })

  it('answers a known path asked with another method with 405 and the methods it takes, and creates nothing', async () => {
    const id = '0b7e1c9e-8d7a-4c39-9d3e-2f1f7c1e5a10'
    const del = await call('DELETE', `/things/${id}`)
    expect(del.status).toBe(405)
    expectEnvelope(del.json, 'METHOD_NOT_ALLOWED')
    expect(del.headers.allow).toBe('GET')
    expect(del.json.error.message).toBe(`DELETE is not allowed on /things/${id}; it takes GET`)
    const before = seen.length
    const put = await call('PUT', '/things', JSON.stringify({ name: 'never' }), { 'content-type': 'application/json' })
    expect(put.status).toBe(405)
    expect(put.headers.allow).toBe('POST')
    expect(seen.length).toBe(before)
    // the next request on the same connection is served as itself
    const ok = await call('GET', `/things/${id}?limit=2`)
    expect(ok.json).toEqual({ id, limit: 2 })
    // a path that takes several methods lists them all
    const both = await call('DELETE', '/limited')
    expect(both.status).toBe(405)
    expect(both.headers.allow).toBe('GET, PATCH')
    const head = await call('HEAD', '/boom')
    expect(head.status).toBe(405)
    expect(head.headers.allow).toBe('GET')
    // OPTIONS without an Origin (not a CORS preflight) lists the methods
    const options = await call('OPTIONS', '/things')
    expect(options.status).toBe(204)
    expect(options.headers.allow).toBe('POST')
    // a parameter is one segment: a longer path is unknown, not the wrong method
    const deeper = await call('DELETE', `/things/${id}/extra`)
    expect(deeper.status).toBe(404)
    expectEnvelope(deeper.json, 'NOT_FOUND')
    expect((await call('PATCH', '/nowhere')).status).toBe(404)
  })

  it('treats a malformed or badly encoded id as not found', async () => {
    expectEnvelope((await call('GET', '/things/not-a-uuid')).json, 'NOT_FOUND')
    expect((await call('GET', '/things/%E0%A4%A')).status).toBe(404)
    const id = '0b7e1c9e-8d7a-4c39-9d3e-2f1f7c1e5a10'
    const ok = await call('GET', `/things/${id}?limit=5`)
    expect(ok.json).toEqual({ id, limit: 5 })
  })

  it('rejects out-of-range and repeated query values instead of clamping', async () => {
    const id = '0b7e1c9e-8d7a-4c39-9d3e-2f1f7c1e5a10'
    const res = await call('GET', `/things/${id}?limit=500`)
    expect(res.status).toBe(400)
    expect(res.json.error.details.issues[0].path).toBe('query.limit')
    expect((await call('GET', `/things/${id}?limit=1&limit=2`)).status).toBe(400)
  })

  it('refuses query parameters the route does not take, naming them and the ones it does', async () => {
    const id = '0b7e1c9e-8d7a-4c39-9d3e-2f1f7c1e5a10'
    const res = await call('GET', `/things/${id}?limt=5&x=1`)
    expect(res.status).toBe(400)
    expectEnvelope(res.json, 'VALIDATION_ERROR')
    expect(res.json.error.details.issues.map((i: { path: string }) => i.path)).toEqual(['query.limt', 'query.x'])
    expect(res.json.error.message).toContain('"limt"')
    expect(res.json.error.message).toContain('this route takes limit')
    expect((await call('GET', `/things/${id}?limit=5`)).json).toEqual({ id, limit: 5 })
    // a route that takes no query has nothing to check against
    expect((await call('GET', '/boom?cache=1')).status).toBe(500)
  })

  it('a route that takes no body accepts none, {} or null, and refuses anything else without acting', async () => {
    const id = '0b7e1c9e-8d7a-4c39-9d3e-2f1f7c1e5a10'
    const json = { 'content-type': 'application/json' }
    const before = seen.length
    expect((await call('POST', `/things/${id}/poke`)).status).toBe(200)
    expect((await call('POST', `/things/${id}/poke`, '{}', json)).status).toBe(200)
    expect((await call('POST', `/things/${id}/poke`, 'null', json)).status).toBe(200)
    expect(seen.length).toBe(before + 3)
    const fields = await call('POST', `/things/${id}/poke`, '{"force":true}', json)
    expect(fields.status).toBe(400)
    expectEnvelope(fields.json, 'VALIDATION_ERROR')
    expect(fields.json.error.details.issues[0].path).toBe('body.force')
    expect((await call('POST', `/things/${id}/poke`, '[1]', json)).status).toBe(400)
    expect((await call('POST', `/things/${id}/poke`, '"x"', json)).status).toBe(400)
    expect(seen.length).toBe(before + 3)
  })

  it('hides internal errors behind a 500 INTERNAL envelope', async () => {
    const res = await call('GET', '/boom')
    expect(res.status).toBe(500)
    expectEnvelope(res.json, 'INTERNAL')
    expect(JSON.stringify(res.json)).not.toContain('passwd')
  })

  it('passes error headers through (Retry-After on 429)', async () => {
    const res = await call('GET', '/limited')
    expect(res.status).toBe(429)
    expect(res.headers['retry-after']).toBe('7')
  })

  it('refuses protected routes without credentials', async () => {
    const res = await call('GET', '/private')
    expect(res.status).toBe(401)
    expectEnvelope(res.json, 'UNAUTHORIZED')
  })

  it('echoes a sane request id and replaces a hostile one', async () => {
    expect((await call('GET', '/nowhere', undefined, { 'x-request-id': 'abc-123' })).json.error.requestId).toBe('abc-123')
    const hostile = await call('GET', '/nowhere', undefined, { 'x-request-id': 'a b\tc'.repeat(30) })
    expect(hostile.json.error.requestId).not.toContain(' ')
  })

  it('takes the client address from X-Forwarded-For only as far as the trusted hops', async () => {
    const res = await call('POST', '/things', JSON.stringify({ name: 'ip' }), { 'x-forwarded-for': '6.6.6.6, 203.0.113.9' })
    expect(res.json.ip).toBe('203.0.113.9')
  })

  it('answers CORS preflight for allowed origins only', async () => {
    const ok = await call('OPTIONS', '/things', undefined, { origin: 'https://app.example.com', 'access-control-request-method': 'POST' })
    expect(ok.status).toBe(204)
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example.com')
    const other = await call('OPTIONS', '/things', undefined, { origin: 'https://evil.example', 'access-control-request-method': 'POST' })
    expect(other.headers['access-control-allow-origin']).toBeUndefined()
  })

  it('holds its port alone: a second server on it fails to start, and every request still reaches the first', async () => {
    // a fixed port: the kernel never shares one it picked itself (port 0), with or without the flag
    const port = await freePort()
    const serve = (name: string) => {
      const s = new HttpServer({ config: { bodyLimitBytes: LIMIT, corsOrigins: [], trustProxyHops: 0, production: false }, logger: createLogger('silent') })
      s.register(defineRoute({ method: 'GET', path: '/who', auth: 'none', summary: 's', tags: ['test'], responses: { 200: z.object({ name: z.string() }) }, handler: () => ({ name }) }))
      return s
    }
    const first = serve('first')
    const second = serve('second')
    try {
      await first.listen(port, '127.0.0.1')
      await expect(second.listen(port, '127.0.0.1')).rejects.toThrow(`cannot listen on 127.0.0.1:${port}: the port is in use (another collector?)`)
      // with a shared port (SO_REUSEPORT) the kernel would hand some new connections to the second
      for (let i = 0; i < 20; i++) {
        const res = await request(`http://127.0.0.1:${port}/who`, { reset: true })
        expect(await res.body.json()).toEqual({ name: 'first' })
      }
    } finally {
      await second.close(100)
      await first.close(100)
    }
  })

  it('refuses a body whose length is not its Content-Length (two differing headers) with a 400, closing the connection, and keeps serving', async () => {
    const port = Number(new URL(base).port)
    const raw = (lengths: number[], body: string) =>
      new Promise<string>((resolve) => {
        let out = ''
        const socket = connect(port, '127.0.0.1', () =>
          socket.write(`POST /things HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${lengths.map((n) => `Content-Length: ${n}\r\n`).join('')}\r\n${body}`),
        )
        socket.on('data', (d: Buffer) => (out += d.toString()))
        socket.on('close', () => resolve(out))
        socket.on('error', () => resolve(out))
      })
    const body = JSON.stringify({ name: 'smuggled' })
    // uWS frames the body by the first header, hyper-express sized its buffer by the last one
    for (const lengths of [[body.length, 2], [2, body.length]]) {
      const answer = await raw(lengths, body)
      expect(answer).toMatch(/^HTTP\/1\.1 400 /)
      expect(answer).toMatch(/\r\nconnection: close\r\n/i)
      expect(answer).toContain('"code":"VALIDATION_ERROR"')
      expect(answer).toContain('its Content-Length header gives')
    }
    expect(seen).not.toContain('smuggled')
    const res = await call('POST', '/things', JSON.stringify({ name: 'after' }))
    expect(res.status).toBe(201)
  })

  it('keeps serving after garbage on the wire', async () => {
    await new Promise<void>((resolve) => {
      const port = Number(new URL(base).port)
      const socket = connect(port, '127.0.0.1', () => socket.end('GARBAGE / NOT-HTTP\r\n\r\n\0\0\0'))
      socket.on('close', () => resolve())
      socket.on('error', () => resolve())
      socket.resume()
    })
    const res = await call('POST', '/things', JSON.stringify({ name: 'still' }))
    expect(res.status).toBe(201)
  })
})

describe('graceful close', () => {
  it('answers the requests under way however many arrive meanwhile; those get a 503 with Connection: close', async () => {
    let open!: () => void
    const gate = new Promise<void>((resolve) => (open = resolve))
    let entered = 0
    let bothIn!: () => void
    const inHandler = new Promise<void>((resolve) => (bothIn = resolve))
    const slow = new HttpServer({ config: { bodyLimitBytes: LIMIT, corsOrigins: [], trustProxyHops: 0, production: false }, logger: createLogger('silent') })
    slow.register(
      defineRoute({ method: 'POST', path: '/slow', auth: 'none', summary: 'waits', tags: ['test'], body: z.object({ n: z.number() }), responses: { 200: null }, handler: async ({ body }) => {
          if (++entered === 2) bothIn()
          await gate
          return { n: body.n }
        } }),
      defineRoute({ method: 'GET', path: '/quick', auth: 'none', summary: 'answers', tags: ['test'], responses: { 200: null }, handler: () => ({ ok: true }) }),
    )
    const url = `http://127.0.0.1:${await slow.listen(0, '127.0.0.1')}`
    const { Client } = await import('undici')
    // connections opened before the close, each kept alive
    const clients = Array.from({ length: 6 }, () => new Client(url, { keepAliveTimeout: 30_000 }))
    try {
      for (const c of clients) expect((await c.request({ path: '/quick', method: 'GET' })).statusCode).toBe(200)
      const underWay = clients.slice(0, 2).map((c, n) => c.request({ path: '/slow', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n }) }))
      await inHandler // both under way before the close starts
      let closed = false
      const closing = slow.close(10_000).then(() => (closed = true))
      // health checks and retries on the other open connections while the two drain
      const meanwhile = await Promise.all(clients.slice(2).flatMap((c) => [c.request({ path: '/quick', method: 'GET' })]))
      for (const r of meanwhile) {
        expect(r.statusCode).toBe(503)
        expect([r.headers.connection].flat()).toContain('close')
        expect(((await r.body.json()) as { error: { code: string } }).error.code).toBe('NOT_READY')
      }
      await new Promise((r) => setTimeout(r, 100))
      expect(closed).toBe(false)
      open()
      const answers = await Promise.all(underWay)
      expect(answers.map((r) => r.statusCode)).toEqual([200, 200])
      expect(await Promise.all(answers.map((r) => r.body.json()))).toEqual([{ n: 0 }, { n: 1 }])
      await closing
      expect(closed).toBe(true)
    } finally {
      open()
      await Promise.all(clients.map((c) => c.destroy()))
      await slow.close(0)
    }
  })
})
