import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiKey, CreatedApiKey, Page } from '@llmguard/shared'
import { createTestDatabase, onRealPostgres, startTestCollector, type TestCollector } from './helpers/collector.js'
import { count, createKey, failure, setupProject, signUp, type TestUser } from './helpers/accounts.js'

let collector: TestCollector
let owner: TestUser
let projectId: string

beforeAll(async () => {
  collector = await startTestCollector()
  ;({ user: owner, project: { id: projectId } } = await setupProject(collector))
})
afterAll(() => collector?.close())

const as = (user: TestUser) => ({ token: user.accessToken })
const usePolicy = (key: string, headers?: Record<string, string>) =>
  collector.client.send('GET', '/v1/llm/policy', headers ? { headers } : { token: key })
const refused = async (key: string) => {
  const err = await failure(usePolicy(key))
  return [err.status, err.code]
}

describe('API keys', () => {
  it('life cycle: create → works → rotate → old refused, new works → revoke → refused', async () => {
    const created = await collector.client.send<CreatedApiKey>('POST', `/v1/projects/${projectId}/keys`, { ...as(owner), body: { name: 'ci' } })
    expect(created.status).toBe(201)
    const key = created.data
    expect(key.key).toMatch(/^lg_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(key).toMatchObject({ name: 'ci', last4: key.key.slice(-4) })
    expect((await usePolicy(key.key)).status).toBe(200)
    // X-API-Key works as well as Bearer
    expect((await usePolicy(key.key, { 'x-api-key': key.key })).status).toBe(200)

    const rotated = await collector.client.send<CreatedApiKey>('POST', `/v1/projects/${projectId}/keys/${key.id}/rotate`, as(owner))
    expect(rotated.status).toBe(201)
    expect(rotated.data.key).not.toBe(key.key)
    expect(rotated.data.name).toBe('ci')
    expect(await refused(key.key)).toEqual([403, 'INVALID_API_KEY'])
    expect((await usePolicy(rotated.data.key)).status).toBe(200)

    const list = await collector.client.get<Page<ApiKey>>(`/v1/projects/${projectId}/keys`, as(owner))
    const byId = new Map(list.items.map((k) => [k.id, k]))
    expect(byId.get(key.id)!.revokedAt).not.toBeNull()
    expect(byId.get(rotated.data.id)).toMatchObject({ revokedAt: null, rotatedFrom: key.id, last4: rotated.data.key.slice(-4) })
    // the list is metadata only
    expect(JSON.stringify(list)).not.toContain(rotated.data.key)
    expect(list.items.every((k) => !('key' in k))).toBe(true)

    const revoked = await collector.client.send('DELETE', `/v1/projects/${projectId}/keys/${rotated.data.id}`, as(owner))
    expect(revoked.status).toBe(204)
    expect(await refused(rotated.data.key)).toEqual([403, 'INVALID_API_KEY'])
    // revoking again changes nothing; rotating a revoked key is a conflict
    expect((await collector.client.send('DELETE', `/v1/projects/${projectId}/keys/${rotated.data.id}`, as(owner))).status).toBe(204)
    const again = await failure(collector.client.post(`/v1/projects/${projectId}/keys/${rotated.data.id}/rotate`, undefined, as(owner)))
    expect([again.status, again.code]).toEqual([409, 'CONFLICT'])
  })

  it('stores only an HMAC of the key and its last four characters', async () => {
    const key = await createKey(collector, owner, projectId)
    const [row] = await collector.sql<{ key_hash: string; last4: string }[]>`select key_hash, last4 from api_keys where id = ${key.id}`
    expect(row!.key_hash).toMatch(/^[0-9a-f]{64}$/)
    expect(row!.key_hash).not.toContain(key.key.slice(3))
    expect(row!.last4).toBe(key.key.slice(-4))
  })

  it('refuses unknown, malformed and JWT-shaped keys', async () => {
    expect(await refused(`lg_${randomUUID()}`)).toEqual([403, 'INVALID_API_KEY'])
    expect(await refused('lg_not-a-uuid')).toEqual([403, 'INVALID_API_KEY'])
    const noKey = await failure(collector.client.get('/v1/llm/policy'))
    expect([noKey.status, noKey.code]).toEqual([401, 'UNAUTHORIZED'])
    // a user's JWT is not a key
    const jwt = await failure(collector.client.get('/v1/llm/policy', as(owner)))
    expect([jwt.status, jwt.code]).toEqual([401, 'UNAUTHORIZED'])
  })

  it('400 on bad key bodies, 404 on unknown or malformed key ids; nothing changes', async () => {
    const before = await count(collector, 'api_keys')
    for (const body of [{ name: '' }, { name: 'x'.repeat(101) }, { name: 3 }, { label: 'x' }]) {
      const err = await failure(collector.client.post(`/v1/projects/${projectId}/keys`, body, as(owner)))
      expect([err.status, err.code]).toEqual([400, 'VALIDATION_ERROR'])
    }
    for (const keyId of [randomUUID(), 'nope']) {
      const rotate = await failure(collector.client.post(`/v1/projects/${projectId}/keys/${keyId}/rotate`, undefined, as(owner)))
      expect([rotate.status, rotate.code]).toEqual([404, 'NOT_FOUND'])
      const del = await failure(collector.client.delete(`/v1/projects/${projectId}/keys/${keyId}`, as(owner)))
      expect([del.status, del.code]).toEqual([404, 'NOT_FOUND'])
    }
    expect(await count(collector, 'api_keys')).toBe(before)
  })

  it("a key of one project cannot be rotated or revoked through another project's path", async () => {
    const other = await setupProject(collector, owner)
    const err = await failure(collector.client.delete(`/v1/projects/${projectId}/keys/${other.key.id}`, as(owner)))
    expect([err.status, err.code]).toEqual([404, 'NOT_FOUND'])
    expect((await usePolicy(other.key.key)).status).toBe(200)
  })
})

/** Revokes `key` through `a`, then asks `b` until it refuses it: how long that took (ms; Infinity after 3 s). */
async function revokeOnARefusedOnBAfter(a: TestCollector, b: TestCollector, user: TestUser, key: { id: string; key: string }): Promise<number> {
  const project = (await a.sql<{ project_id: string }[]>`select project_id from api_keys where id = ${key.id}`)[0]!.project_id
  await a.client.delete(`/v1/projects/${project}/keys/${key.id}`, { token: user.accessToken })
  const revokedAt = Date.now()
  while (Date.now() - revokedAt < 3_000) {
    const res = await b.client.send('GET', '/v1/llm/policy', { token: key.key }).catch((err: { status: number }) => err)
    if ('status' in res && res.status === 403) return Date.now() - revokedAt
    await new Promise((r) => setTimeout(r, 20))
  }
  return Infinity
}

describe.runIf(onRealPostgres())('two instances on one database', () => {
  it('a revocation on one instance is refused by the other within 1 s', async () => {
    const db = await createTestDatabase()
    const a = await startTestCollector({ databaseUrl: db.url, keepData: true })
    const b = await startTestCollector({ databaseUrl: db.url, keepData: true })
    try {
      const user = await signUp(a)
      const { key } = await setupProject(a, user)
      // b verifies (and caches) the key, and starts listening for changes
      expect((await b.client.send('GET', '/v1/llm/policy', { token: key.key })).status).toBe(200)
      await new Promise((r) => setTimeout(r, 300))
      expect((await b.client.send('GET', '/v1/llm/policy', { token: key.key })).status).toBe(200)
      expect(await revokeOnARefusedOnBAfter(a, b, user, key)).toBeLessThan(1_000)
    } finally {
      await a.close()
      await b.close()
      await db.drop()
    }
  })

  it("still within 1 s when the other instance's LISTEN connection is lost and cannot come back", async () => {
    const db = await createTestDatabase()
    const role = `llmguard_t_role_${randomUUID().slice(0, 8)}`
    const admin = postgres(db.url, { max: 1, onnotice: () => undefined })
    const a = await startTestCollector({ databaseUrl: db.url, keepData: true })
    let b: TestCollector | undefined
    try {
      // b connects as a role of its own, so its connections can be capped
      await admin.unsafe(`create role ${role} login`)
      await admin.unsafe(`grant all on schema public to ${role}; grant all on all tables in schema public to ${role}; grant all on all sequences in schema public to ${role}`)
      const url = new URL(db.url)
      url.username = role
      b = await startTestCollector({ databaseUrl: url.toString(), keepData: true })
      const user = await signUp(a)
      const { key } = await setupProject(a, user)
      expect((await b.client.send('GET', '/v1/llm/policy', { token: key.key })).status).toBe(200)
      await new Promise((r) => setTimeout(r, 500))
      // b's LISTEN connection dies, and the role's cap refuses it a new one
      const n = (await admin<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where usename = ${role}`)[0]!.n
      await admin.unsafe(`alter role ${role} connection limit ${n - 1}`)
      const killed = await admin`select pg_terminate_backend(pid) from pg_stat_activity where usename = ${role} and query ilike 'listen%'`
      expect(killed.length).toBe(1)
      // b caches the key again with its pool, and only then is it revoked
      await new Promise((r) => setTimeout(r, 1_100))
      expect((await b.client.send('GET', '/v1/llm/policy', { token: key.key })).status).toBe(200)
      expect(await revokeOnARefusedOnBAfter(a, b, user, key)).toBeLessThan(1_000)
      // once connections are allowed again, b listens again by itself (postgres.js reconnects it)
      await admin.unsafe(`alter role ${role} connection limit -1`)
      const listening = async () => (await admin`select 1 from pg_stat_activity where usename = ${role} and query ilike 'listen%'`).length > 0
      const until = Date.now() + 12_000
      while (!(await listening()) && Date.now() < until) await new Promise((r) => setTimeout(r, 200))
      expect(await listening()).toBe(true)
    } finally {
      await a.close()
      await b?.close()
      await db.drop()
      await admin.end({ timeout: 0 }).catch(() => undefined)
      const s = postgres(process.env.TEST_DATABASE_URL!, { max: 1, onnotice: () => undefined })
      await s.unsafe(`drop role if exists ${role}`)
      await s.end()
    }
  })
})
