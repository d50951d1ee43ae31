import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { SubjectWindow } from '../src/ratelimit/window.js'
import { createTestDatabase, onRealPostgres, startTestCollector, type TestCollector } from './helpers/collector.js'
import { createKey, setupProject, signUp } from './helpers/accounts.js'

describe('SubjectWindow (sliding window bookkeeping)', () => {
  it('is exact: a request leaves the window exactly 60 s after it was admitted', () => {
    const w = new SubjectWindow()
    const t0 = 1_000_000
    expect(w.take(t0, 3).allowed).toBe(true)
    expect(w.take(t0 + 10_000, 3).allowed).toBe(true)
    const third = w.take(t0 + 20_000, 3)
    expect([third.allowed, third.remaining]).toEqual([true, 0])
    const refused = w.take(t0 + 30_000, 3)
    expect(refused).toMatchObject({ allowed: false, remaining: 0, resetSeconds: 30 })
    expect(w.take(t0 + 59_999, 3).allowed).toBe(false)
    expect(w.take(t0 + 60_001, 3).allowed).toBe(true)
    expect(w.take(t0 + 60_002, 3).allowed).toBe(false)
  })

  it("counts the other instances' requests and spends only its share of what is left between syncs", () => {
    const w = new SubjectWindow()
    const now = 2_000_000
    w.limit = 100
    // others admitted 40 in the last seconds; of the remaining 60, two instances each take 1/4
    w.synced(now, new Map([[Math.floor(now / 1000) - 5, 40]]), 2)
    let allowed = 0
    for (let i = 0; i < 100; i++) if (w.take(now + i, 100).allowed) allowed++
    expect(allowed).toBe(15)
    // the next sync shows the others now at 85: nothing left
    w.synced(now + 250, new Map([[Math.floor(now / 1000) - 5, 40], [Math.floor(now / 1000), 45]]), 2)
    expect(w.take(now + 300, 100).allowed).toBe(false)
    // remote counts expire with the window like local ones
    expect(w.used(now + 61_000)).toBe(0)
  })

  it('a small limit on many instances still admits: a share of at least one while anything is left', () => {
    const now = 4_000_000
    // four instances, a limit of 10: 10 / 16 rounds to 0
    const w = new SubjectWindow()
    w.limit = 10
    w.synced(now, new Map(), 4)
    expect([w.take(now, 10).allowed, w.take(now + 1, 10).allowed]).toEqual([true, false])
    // the others used it all meanwhile: none left, none admitted
    w.synced(now + 250, new Map([[Math.floor(now / 1000), 9]]), 4)
    expect(w.take(now + 251, 10).allowed).toBe(false)
  })

  it('a lowered limit cuts the share at once, not at the next sync', () => {
    const w = new SubjectWindow()
    const now = 3_000_000
    w.limit = 600
    w.synced(now, new Map(), 3) // a share of 600 / 9 = 66 until the next sync
    let allowed = 0
    for (let i = 0; i < 100; i++) if (w.take(now + i, 20).allowed) allowed++
    // of the new 20, this instance (one of three) spends 20 / 9 = 2 before the next sync
    expect(allowed).toBe(2)
  })
})

describe('rate limits on one instance', () => {
  let collector: TestCollector
  beforeAll(async () => {
    collector = await startTestCollector()
  })
  afterAll(() => collector?.close())

  const get = (path: string, token: string) => request(`${collector.url}${path}`, { headers: { authorization: `Bearer ${token}` } })

  it("per API key, the project's rateLimit: 429 RATE_LIMITED with Retry-After and RateLimit-* headers", async () => {
    const { user, project, key } = await setupProject(collector)
    await collector.client.patch(`/v1/projects/${project.id}/settings`, { rateLimit: 5 }, { token: user.accessToken })
    for (let i = 0; i < 5; i++) {
      const res = await get('/v1/llm/policy', key.key)
      await res.body.dump()
      expect(res.statusCode).toBe(200)
      expect(res.headers['ratelimit-limit']).toBe('5')
      expect(res.headers['ratelimit-remaining']).toBe(String(4 - i))
    }
    const refused = await get('/v1/llm/policy', key.key)
    expect(refused.statusCode).toBe(429)
    const body = (await refused.body.json()) as { error: { code: string } }
    expect(body.error.code).toBe('RATE_LIMITED')
    expect(refused.headers['retry-after']).toMatch(/^\d+$/)
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60)
    expect(refused.headers['ratelimit-remaining']).toBe('0')
    expect(refused.headers['ratelimit-reset']).toBe(refused.headers['retry-after'])

    // each key has its own window
    const second = await createKey(collector, user, project.id)
    expect((await get('/v1/llm/policy', second.key)).statusCode).toBe(200)
    // raising the limit applies at once (cached keys carry the old one until invalidated)
    await collector.client.patch(`/v1/projects/${project.id}/settings`, { rateLimit: 50 }, { token: user.accessToken })
    const raised = await get('/v1/llm/policy', key.key)
    expect(raised.statusCode).toBe(200)
    expect(raised.headers['ratelimit-limit']).toBe('50')
  })

  it('a batch counts once, whatever its size', async () => {
    const { key } = await setupProject(collector)
    const records = Array.from({ length: 20 }, (_, i) => ({ prompt: `p${i}`, model: 'gpt-4o-mini', latency: 10 }))
    const res = await request(`${collector.url}/v1/llm/requests/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ records }),
    })
    await res.body.dump()
    expect(res.statusCode).toBe(200)
    expect(res.headers['ratelimit-remaining']).toBe('599')
  })

  it('per user: 1,200 requests a minute', async () => {
    const user = await signUp(collector)
    let ok = 0
    let limited = 0
    const worker = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const res = await get('/v1/auth/me', user.accessToken)
        await res.body.dump()
        if (res.statusCode === 200) ok++
        else if (res.statusCode === 429) limited++
      }
    }
    await Promise.all(Array.from({ length: 8 }, () => worker(151)))
    expect([ok, limited]).toEqual([1200, 8])
  })
})

describe.runIf(onRealPostgres())('rate limits across two instances on one database', () => {
  it('two instances together do not exceed the limit by more than 10 %', async () => {
    const db = await createTestDatabase()
    const a = await startTestCollector({ databaseUrl: db.url, keepData: true })
    const b = await startTestCollector({ databaseUrl: db.url, keepData: true })
    try {
      const { user, project, key } = await setupProject(a)
      await a.client.patch(`/v1/projects/${project.id}/settings`, { rateLimit: 100 }, { token: user.accessToken })
      // both instances know of each other (heartbeats every 250 ms)
      await new Promise((r) => setTimeout(r, 600))
      let allowed = 0
      const hammer = async (target: TestCollector) => {
        for (let i = 0; i < 75; i++) {
          const res = await request(`${target.url}/v1/llm/policy`, { headers: { authorization: `Bearer ${key.key}` } })
          await res.body.dump()
          if (res.statusCode === 200) allowed++
          else expect(res.statusCode).toBe(429)
        }
      }
      // 300 requests over ~1 s: without sharing, each instance would admit 100
      await Promise.all([hammer(a), hammer(a), hammer(b), hammer(b)])
      expect(allowed).toBeLessThanOrEqual(110)
      expect(allowed).toBeGreaterThanOrEqual(30)
      // and the counts keep flowing: a while later the budget is still spent on both
      await new Promise((r) => setTimeout(r, 600))
      for (const target of [a, b]) {
        const res = await request(`${target.url}/v1/llm/policy`, { headers: { authorization: `Bearer ${key.key}` } })
        await res.body.dump()
        if (res.statusCode === 200) allowed++
      }
      expect(allowed).toBeLessThanOrEqual(110)
    } finally {
      await a.close()
      await b.close()
      await db.drop()
    }
  })
})
