import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { startTestCollector, type TestCollector } from './helpers/collector.js'
import { setupProject } from './helpers/accounts.js'

/**
 * The ownership matrix: a second user (and a key of the second user's project) calls every
 * project-scoped route registered — read from the OpenAPI document, so routes added later are
 * covered too — on the first user's project, and gets 403 (or 404) and none of its data.
 */
let collector: TestCollector
let a: Awaited<ReturnType<typeof setupProject>>
let b: Awaited<ReturnType<typeof setupProject>>
let routes: { method: string; path: string; auth: string[] }[]

beforeAll(async () => {
  collector = await startTestCollector()
  a = await setupProject(collector)
  b = await setupProject(collector)
  await collector.client.patch(`/v1/projects/${a.project.id}/settings`, { systemPrompt: 'secret-of-a' }, { token: a.user.accessToken })
  const doc = await collector.client.get<{ paths: Record<string, Record<string, { security: Record<string, unknown>[] }>> }>('/openapi.json')
  routes = Object.entries(doc.paths)
    .filter(([path]) => path.startsWith('/v1/projects/{id}'))
    .flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, auth: op.security.flatMap(Object.keys) })))
})
afterAll(() => collector?.close())

const fill = (path: string, id: string) =>
  path.replace('{id}', id).replace(/\{keyId\}/g, a.key.id).replace(/\{[A-Za-z]+\}/g, randomUUID())

async function call(method: string, path: string, token: string) {
  const res = await request(`${collector.url}${path}`, {
    method: method as 'GET',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: ['GET', 'DELETE'].includes(method) ? undefined : JSON.stringify({ name: 'hijacked', safetyThreshold: 1, status: 'resolved' }),
  })
  return { status: res.statusCode, text: await res.body.text() }
}

describe('ownership matrix', () => {
  it('covers the project routes', () => {
    const names = routes.map((r) => `${r.method} ${r.path}`)
    expect(names).toEqual(expect.arrayContaining(['GET /v1/projects/{id}', 'DELETE /v1/projects/{id}', 'POST /v1/projects/{id}/keys', 'PATCH /v1/projects/{id}/settings']))
  })

  it("another user's JWT gets 403 on every route of the project, and none of its data", async () => {
    for (const route of routes) {
      const res = await call(route.method, fill(route.path, a.project.id), b.user.accessToken)
      expect(res.status, `${route.method} ${route.path}`).toBe(403)
      expect(JSON.parse(res.text).error.code).toBe('FORBIDDEN')
      for (const secret of ['secret-of-a', a.key.key, a.user.email]) expect(res.text).not.toContain(secret)
    }
  })

  it("another project's API key gets 403 where keys are accepted and 401 elsewhere", async () => {
    for (const route of routes) {
      const res = await call(route.method, fill(route.path, a.project.id), b.key.key)
      const acceptsKeys = route.auth.includes('apiKey')
      expect(res.status, `${route.method} ${route.path}`).toBe(acceptsKeys ? 403 : 401)
      expect(res.text).not.toContain('secret-of-a')
    }
  })

  it('unknown and malformed ids are 404 for everyone', async () => {
    for (const route of routes) {
      for (const id of [randomUUID(), 'not-a-uuid']) {
        const res = await call(route.method, fill(route.path, id), b.user.accessToken)
        expect(res.status, `${route.method} ${route.path} ${id}`).toBe(404)
      }
    }
  })

  it("a project id in upper case is the same project, for its own key as for its owner", async () => {
    const upper = a.project.id.toUpperCase()
    for (const path of [`/v1/projects/${upper}/logs`, `/v1/projects/${upper}/metrics`]) {
      for (const token of [a.key.key, a.user.accessToken]) {
        const res = await call('GET', path, token)
        expect(res.status, `${path} ${token === a.key.key ? 'key' : 'jwt'}`).toBe(200)
      }
      // and another project's key is still refused
      expect((await call('GET', path, b.key.key)).status).toBe(403)
    }
  })

  it("nothing of the first user's project changed", async () => {
    const project = await collector.client.get<{ name: string }>(`/v1/projects/${a.project.id}`, { token: a.user.accessToken })
    expect(project.name).toBe('demo')
    const settings = await collector.client.get<{ systemPrompt: string; safetyThreshold: number }>(`/v1/projects/${a.project.id}/settings`, { token: a.user.accessToken })
    expect(settings).toMatchObject({ systemPrompt: 'secret-of-a', safetyThreshold: 80 })
    const [row] = await collector.sql<{ revoked: number; total: number }[]>`
      select count(*) filter (where revoked_at is not null)::int as revoked, count(*)::int as total from api_keys where project_id = ${a.project.id}`
    expect(row).toEqual({ revoked: 0, total: 1 })
    expect((await collector.client.send('GET', '/v1/llm/policy', { token: a.key.key })).status).toBe(200)
  })
})
