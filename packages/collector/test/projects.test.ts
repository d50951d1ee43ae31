import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { request } from 'undici'
import type { Page, Project } from '@llmguard/shared'
import { startTestCollector, type TestCollector } from './helpers/collector.js'
import { count, createKey, createProject, failure, signUp, type TestUser } from './helpers/accounts.js'

let collector: TestCollector
let owner: TestUser

beforeAll(async () => {
  collector = await startTestCollector()
  owner = await signUp(collector)
})
afterAll(() => collector?.close())

const as = (user: TestUser) => ({ token: user.accessToken })

describe('projects', () => {
  it('creates, reads, renames, lists and deletes', async () => {
    const created = await collector.client.send<Project>('POST', '/v1/projects', { ...as(owner), body: { name: '  Chatbot  ' } })
    expect(created.status).toBe(201)
    expect(created.data).toMatchObject({ name: 'Chatbot', userId: owner.id })
    const id = created.data.id
    expect(await collector.client.get<Project>(`/v1/projects/${id}`, as(owner))).toEqual(created.data)
    const renamed = await collector.client.patch<Project>(`/v1/projects/${id}`, { name: 'Support bot' }, as(owner))
    expect(renamed.name).toBe('Support bot')
    expect(new Date(renamed.updatedAt).getTime()).toBeGreaterThanOrEqual(new Date(created.data.updatedAt).getTime())
    const list = await collector.client.get<Page<Project>>('/v1/projects', as(owner))
    expect(list).toMatchObject({ page: 1, limit: 50, totalCapped: false })
    expect(list.items.map((p) => p.id)).toContain(id)
    const deleted = await collector.client.send('DELETE', `/v1/projects/${id}`, as(owner))
    expect(deleted.status).toBe(204)
    const gone = await failure(collector.client.get(`/v1/projects/${id}`, as(owner)))
    expect([gone.status, gone.code]).toEqual([404, 'NOT_FOUND'])
  })

  it('holds at most 100 projects per account and 100 keys in use per project (409); revoked keys do not count', async () => {
    const user = await signUp(collector)
    // 99 made directly, the 100th through the API
    await collector.sql`insert into projects (user_id, name) select ${user.id}, 'p' || g from generate_series(1, 99) g`
    const last = await collector.client.send<Project>('POST', '/v1/projects', { ...as(user), body: { name: 'hundredth' } })
    expect(last.status).toBe(201)
    const over = await failure(collector.client.post('/v1/projects', { name: 'one too many' }, as(user)))
    expect([over.status, over.code, over.details]).toEqual([409, 'CONFLICT', { limit: 100 }])
    expect(over.message).toContain('at most 100 projects')
    expect((await collector.sql`select count(*)::int as n from projects where user_id = ${user.id}`)[0]!.n).toBe(100)
    // another account is not held by this one's
    expect((await collector.client.send('POST', '/v1/projects', { ...as(owner), body: { name: 'mine' } })).status).toBe(201)

    const projectId = last.data.id
    await collector.sql`insert into api_keys (project_id, name, key_hash, last4) select ${projectId}, null, 'fake-' || ${randomUUID()} || g, 'xxxx' from generate_series(1, 99) g`
    const hundredth = await createKey(collector, user, projectId)
    const refused = await failure(collector.client.post(`/v1/projects/${projectId}/keys`, {}, as(user)))
    expect([refused.status, refused.code]).toEqual([409, 'CONFLICT'])
    expect(refused.message).toContain('at most 100 API keys in use')
    // a rotation revokes first: it is never refused for the limit
    const rotated = await collector.client.send<{ id: string; key: string }>('POST', `/v1/projects/${projectId}/keys/${hundredth.id}/rotate`, as(user))
    expect(rotated.status).toBe(201)
    // revoking one makes room again
    await collector.client.send('DELETE', `/v1/projects/${projectId}/keys/${rotated.data.id}`, as(user))
    expect((await collector.client.send('POST', `/v1/projects/${projectId}/keys`, { ...as(user), body: {} })).status).toBe(201)
  })

  it('holds the caps when creates arrive at the same moment', async () => {
    const user = await signUp(collector)
    await collector.sql`insert into projects (user_id, name) select ${user.id}, 'p' || g from generate_series(1, 98) g`
    const status = (p: Promise<{ status: number }>) => p.then((r) => r.status, (e: { status: number }) => e.status)
    const creates = await Promise.all(Array.from({ length: 8 }, (_, i) => status(collector.client.send('POST', '/v1/projects', { ...as(user), body: { name: `racing ${i}` } }))))
    expect(creates.sort()).toEqual([201, 201, 409, 409, 409, 409, 409, 409])
    expect((await collector.sql`select count(*)::int as n from projects where user_id = ${user.id}`)[0]!.n).toBe(100)
    const [project] = await collector.sql<{ id: string }[]>`select id from projects where user_id = ${user.id} limit 1`
    await collector.sql`insert into api_keys (project_id, name, key_hash, last4) select ${project!.id}, null, 'fake-' || ${randomUUID()} || g, 'xxxx' from generate_series(1, 97) g`
    const keys = await Promise.all(Array.from({ length: 8 }, () => status(collector.client.send('POST', `/v1/projects/${project!.id}/keys`, { ...as(user), body: {} }))))
    expect(keys.sort()).toEqual([201, 201, 201, 409, 409, 409, 409, 409])
    expect((await collector.sql`select count(*)::int as n from api_keys where project_id = ${project!.id} and revoked_at is null`)[0]!.n).toBe(100)
  })

  it('pages newest first with an exact total, and refuses out-of-range paging (400, never clamped)', async () => {
    const user = await signUp(collector)
    for (const name of ['a', 'b', 'c']) await createProject(collector, user, name)
    const first = await collector.client.get<Page<Project>>('/v1/projects', { ...as(user), query: { limit: 2 } })
    expect(first.items.map((p) => p.name)).toEqual(['c', 'b'])
    expect([first.total, first.totalCapped, first.limit]).toEqual([3, false, 2])
    const second = await collector.client.get<Page<Project>>('/v1/projects', { ...as(user), query: { limit: 2, page: 2 } })
    expect(second.items.map((p) => p.name)).toEqual(['a'])
    for (const query of [{ limit: 0 }, { limit: 101 }, { page: 0 }, { limit: 'x' }, { page: 1.5 }]) {
      const err = await failure(collector.client.get('/v1/projects', { ...as(user), query }))
      expect([err.status, err.code]).toEqual([400, 'VALIDATION_ERROR'])
    }
  })

  it('deleting a project removes its keys and settings, and its key stops working', async () => {
    const project = await createProject(collector, owner, 'doomed')
    const key = await createKey(collector, owner, project.id)
    await collector.client.patch(`/v1/projects/${project.id}/settings`, { safetyThreshold: 50 }, as(owner))
    expect((await collector.client.send('GET', '/v1/llm/policy', { token: key.key })).status).toBe(200)
    await collector.client.delete(`/v1/projects/${project.id}`, as(owner))
    const [row] = await collector.sql<{ keys: number; settings: number }[]>`
      select (select count(*)::int from api_keys where project_id = ${project.id}) as keys,
             (select count(*)::int from project_settings where project_id = ${project.id}) as settings`
    expect(row).toEqual({ keys: 0, settings: 0 })
    const err = await failure(collector.client.get('/v1/llm/policy', { token: key.key }))
    expect([err.status, err.code]).toEqual([403, 'INVALID_API_KEY'])
  })

  it.each([
    ['missing name', {}],
    ['empty name', { name: '   ' }],
    ['oversize name', { name: 'x'.repeat(101) }],
    ['wrong type', { name: 12 }],
    ['unknown field', { name: 'ok', userId: randomUUID() }],
    ['array body', ['x']],
  ])('400 on %s; nothing created or changed', async (_case, body) => {
    const project = await createProject(collector, owner, 'stable')
    const before = await count(collector, 'projects')
    const create = await failure(collector.client.post('/v1/projects', body, as(owner)))
    expect([create.status, create.code]).toEqual([400, 'VALIDATION_ERROR'])
    const patch = await failure(collector.client.patch(`/v1/projects/${project.id}`, body, as(owner)))
    expect([patch.status, patch.code]).toEqual([400, 'VALIDATION_ERROR'])
    expect(await count(collector, 'projects')).toBe(before)
    expect((await collector.client.get<Project>(`/v1/projects/${project.id}`, as(owner))).name).toBe('stable')
  })

  it('404 for unknown and malformed ids on every project route', async () => {
    for (const id of [randomUUID(), 'not-a-uuid', '1', '%E0%A4%A']) {
      for (const [method, path] of [
        ['GET', `/v1/projects/${id}`],
        ['PATCH', `/v1/projects/${id}`],
        ['DELETE', `/v1/projects/${id}`],
        ['GET', `/v1/projects/${id}/keys`],
        ['POST', `/v1/projects/${id}/keys`],
        ['GET', `/v1/projects/${id}/settings`],
      ] as const) {
        const res = await request(`${collector.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${owner.accessToken}`, 'content-type': 'application/json' },
          body: method === 'GET' || method === 'DELETE' ? undefined : JSON.stringify({ name: 'x' }),
        })
        expect(res.statusCode, `${method} ${path}`).toBe(404)
        expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND')
      }
    }
  })

  it('needs a user token: none → 401, an API key → 401', async () => {
    const project = await createProject(collector, owner)
    const key = await createKey(collector, owner, project.id)
    const none = await failure(collector.client.get('/v1/projects'))
    expect([none.status, none.code]).toEqual([401, 'UNAUTHORIZED'])
    const withKey = await failure(collector.client.get(`/v1/projects/${project.id}`, { token: key.key }))
    expect([withKey.status, withKey.code]).toEqual([401, 'UNAUTHORIZED'])
  })
})
