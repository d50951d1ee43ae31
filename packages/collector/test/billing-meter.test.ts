import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { BatchResult, BillingInfo, LlmRecordInput } from '@llmguard/shared'
import { startTestCollector, type TestCollector } from './helpers/collector.js'
import { createKey, createProject, failure, setupProject, signUp, type TestUser } from './helpers/accounts.js'

let collector: TestCollector
let admin: TestUser

const rec = (over: Partial<LlmRecordInput> = {}): LlmRecordInput => ({ id: randomUUID(), prompt: 'hello', model: 'gpt-4o-mini', latency: 50, ...over })
const records = (n: number) => Array.from({ length: n }, () => rec())

beforeAll(async () => {
  collector = await startTestCollector()
  admin = await signUp(collector) // the first user of an install is the admin
})
afterAll(() => collector.close())
afterEach(() => {
  collector.app.billing.clock.now = () => new Date()
})

const batch = (key: string, recs: unknown[]) => collector.client.post<BatchResult>('/v1/llm/requests/batch', { records: recs }, { token: key })
const billing = (user: TestUser) => collector.client.get<BillingInfo>('/v1/billing', { token: user.accessToken })
const setPlan = (userId: string, body: unknown, token = admin.accessToken) => collector.client.put<BillingInfo>(`/v1/admin/users/${userId}/plan`, body, { token })

/** Records stored for all of a user's projects, and the user's usage rows summed. */
async function storedAndUsage(userId: string) {
  const [row] = await collector.sql<{ stored: number; used: number }[]>`
    select (select count(*)::int from llm_requests r join projects p on p.id = r.project_id where p.user_id = ${userId}) as stored,
           (select coalesce(sum(used), 0)::int from usage_months where user_id = ${userId}) as used`
  return row!
}

/** A user with `n` projects, a key each, on an enterprise plan with a small limit. */
async function userWithProjects(n: number, limit: number) {
  const { user, key } = await setupProject(collector)
  const keys = [key.key]
  for (let i = 1; i < n; i++) {
    const project = await createProject(collector, user, `p${i}`)
    keys.push((await createKey(collector, user, project.id)).key)
  }
  await setPlan(user.id, { plan: 'enterprise', monthlyLimit: limit })
  return { user, keys }
}

describe('metering', () => {
  it('starts a new user on free: 10,000 a month, nothing used, limits enforced', async () => {
    const user = await signUp(collector)
    const info = await billing(user)
    expect(info).toMatchObject({ userId: user.id, plan: 'free', status: 'active', usage: 0, monthlyLimit: 10_000, limitsEnforced: true, stripeCustomerId: null, stripeSubscriptionId: null })
    const now = new Date()
    expect(info.usageResetsAt).toBe(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString())
    expect(info.nextBillingDate).toBe(info.usageResetsAt)
  })

  it('never lets parallel batches from several projects of one user store past the limit, and counts exactly what was stored', async () => {
    const { user, keys } = await userWithProjects(3, 250)
    // 12 batches × 40 = 480 records for a limit of 250, all at once
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => batch(keys[i % 3]!, records(40))))
    const accepted = results.reduce((s, r) => s + r.accepted, 0)
    const rejected = results.flatMap((r) => r.rejected)
    expect(accepted).toBe(250)
    expect(rejected).toHaveLength(230)
    expect(new Set(rejected.map((r) => r.code))).toEqual(new Set(['PLAN_LIMIT_EXCEEDED']))
    expect(await storedAndUsage(user.id)).toEqual({ stored: 250, used: 250 })
    expect((await billing(user)).usage).toBe(250)
  })

  it('gives back the quota of records that turn out to be duplicates of a racing batch', async () => {
    const { user, keys } = await userWithProjects(2, 100)
    // each set of 15 ids is sent three times at once through one project's key: only one copy of each is stored
    const sets = [records(15), records(15)]
    const results = await Promise.all(sets.flatMap((set, i) => [batch(keys[i]!, set), batch(keys[i]!, set), batch(keys[i]!, set)]))
    expect(results.reduce((s, r) => s + r.accepted, 0)).toBe(30)
    expect(results.reduce((s, r) => s + r.duplicates, 0)).toBe(60)
    expect(results.flatMap((r) => r.rejected)).toEqual([])
    expect(await storedAndUsage(user.id)).toEqual({ stored: 30, used: 30 })
    // the 60 reserved for the duplicates came back: 70 are left
    const rest = await batch(keys[0]!, records(75))
    expect(rest.accepted).toBe(70)
    expect(await storedAndUsage(user.id)).toEqual({ stored: 100, used: 100 })
  })

  it('stores a batch that crosses the limit up to it, in order; invalid records cost nothing; a retried batch at the limit reports duplicates', async () => {
    const { user, keys } = await userWithProjects(1, 10)
    expect((await batch(keys[0]!, records(6))).accepted).toBe(6)
    const crossing: (Partial<LlmRecordInput> & { prompt: string })[] = [rec(), { prompt: 'no model', latency: 1 }, rec(), rec(), rec(), rec(), rec()]
    const result = await batch(keys[0]!, crossing)
    expect(result.accepted).toBe(4)
    expect(result.rejected.map((r) => [r.index, r.code])).toEqual([
      [1, 'VALIDATION_ERROR'],
      [5, 'PLAN_LIMIT_EXCEEDED'],
      [6, 'PLAN_LIMIT_EXCEEDED'],
    ])
    const now = new Date()
    expect(result.rejected[2]!.message).toContain(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString())
    const storedIds = await collector.sql<{ id: string }[]>`select r.id from llm_requests r join projects p on p.id = r.project_id where p.user_id = ${user.id}`
    expect(storedIds.map((r) => r.id)).toEqual(expect.arrayContaining([0, 2, 3, 4].map((i) => crossing[i]!.id)))
    expect(storedIds.map((r) => r.id)).not.toContain(crossing[5]!.id)
    // the SDK retries a batch whose answer it lost: at the limit, its records are duplicates, not rejections
    const retry = await batch(keys[0]!, [crossing[0], crossing[2], rec()])
    expect(retry).toEqual({ accepted: 0, duplicates: 2, rejected: [{ index: 2, code: 'PLAN_LIMIT_EXCEEDED', message: expect.any(String) }] })
    // the same with the ids in upper case (a UUID is the same id in either case)
    const upper = await batch(keys[0]!, [{ ...crossing[0]!, id: crossing[0]!.id!.toUpperCase() }, { ...crossing[2]!, id: crossing[2]!.id!.toUpperCase() }])
    expect(upper).toEqual({ accepted: 0, duplicates: 2, rejected: [] })
    expect(await storedAndUsage(user.id)).toEqual({ stored: 10, used: 10 })
  })

  it('refuses a repeat within the batch of a record refused at the limit, rather than calling it a duplicate', async () => {
    const { user, keys } = await userWithProjects(1, 2)
    const [a, b, c] = [rec(), rec(), rec()]
    const result = await batch(keys[0]!, [a, b, c, { ...c }, { ...a }, { ...c, id: c.id!.toUpperCase() }])
    // a and b fit, c does not: its repeats are refused with it; a's repeat is a duplicate
    expect(result.accepted).toBe(2)
    expect(result.duplicates).toBe(1)
    expect(result.rejected.map((r) => [r.index, r.code])).toEqual([
      [2, 'PLAN_LIMIT_EXCEEDED'],
      [3, 'PLAN_LIMIT_EXCEEDED'],
      [5, 'PLAN_LIMIT_EXCEEDED'],
    ])
    expect(await storedAndUsage(user.id)).toEqual({ stored: 2, used: 2 })
  })

  it('answers a single record past the limit with 429 PLAN_LIMIT_EXCEEDED, Retry-After and the reset time, storing nothing', async () => {
    const { user, keys } = await userWithProjects(1, 1)
    collector.app.billing.clock.now = () => new Date('2031-03-31T23:00:00Z')
    const first = await collector.client.send('POST', '/v1/llm/requests', { body: rec(), token: keys[0] })
    expect(first.status).toBe(201)
    const res = await request(`${collector.url}/v1/llm/requests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys[0]}`, 'content-type': 'application/json' },
      body: JSON.stringify(rec()),
    })
    const body = (await res.body.json()) as { error: { code: string; details: { resetAt: string } } }
    expect(res.statusCode).toBe(429)
    expect(body.error.code).toBe('PLAN_LIMIT_EXCEEDED')
    expect(body.error.details.resetAt).toBe('2031-04-01T00:00:00.000Z')
    expect(res.headers['retry-after']).toBe('3600')
    expect(await storedAndUsage(user.id)).toEqual({ stored: 1, used: 1 })
  })

  it('starts from zero when the UTC month rolls over', async () => {
    const { user, keys } = await userWithProjects(2, 5)
    const clock = collector.app.billing.clock
    clock.now = () => new Date('2031-01-31T23:59:59.500Z')
    expect((await batch(keys[0]!, records(7))).accepted).toBe(5)
    expect((await batch(keys[1]!, records(1))).accepted).toBe(0)
    expect(await billing(user)).toMatchObject({ usage: 5, periodStart: '2031-01-01T00:00:00.000Z', usageResetsAt: '2031-02-01T00:00:00.000Z' })
    clock.now = () => new Date('2031-02-01T00:00:00.000Z')
    expect(await billing(user)).toMatchObject({ usage: 0, periodStart: '2031-02-01T00:00:00.000Z', usageResetsAt: '2031-03-01T00:00:00.000Z' })
    expect((await batch(keys[1]!, records(3))).accepted).toBe(3)
    expect((await billing(user)).usage).toBe(3)
    const months = await collector.sql<{ month: string; used: number }[]>`select to_char(month, 'YYYY-MM') as month, used::int from usage_months where user_id = ${user.id} order by month`
    expect(months).toEqual([
      { month: '2031-01', used: 5 },
      { month: '2031-02', used: 3 },
    ])
  })

  it('gives the reservation back when the batch fails before it is stored', async () => {
    const { user, keys } = await userWithProjects(1, 50)
    const failing = () => {
      throw new Error('annotator failed')
    }
    collector.app.ingest.annotators.push(failing)
    try {
      const err = await failure(batch(keys[0]!, records(5)))
      expect(err.status).toBe(500)
    } finally {
      collector.app.ingest.annotators.splice(collector.app.ingest.annotators.indexOf(failing), 1)
    }
    expect(await storedAndUsage(user.id)).toEqual({ stored: 0, used: 0 })
    expect((await batch(keys[0]!, records(5))).accepted).toBe(5)
    expect(await storedAndUsage(user.id)).toEqual({ stored: 5, used: 5 })
  })
})

describe('PUT /v1/admin/users/:id/plan', () => {
  it('sets enterprise with a custom limit, and back to pro or free with the plan limit', async () => {
    const user = await signUp(collector)
    expect(await setPlan(user.id, { plan: 'enterprise', monthlyLimit: 5_000_000 })).toMatchObject({ plan: 'enterprise', monthlyLimit: 5_000_000 })
    expect(await setPlan(user.id, { plan: 'pro' })).toMatchObject({ plan: 'pro', monthlyLimit: 1_000_000 })
    expect((await billing(user)).plan).toBe('pro')
    expect(await setPlan(user.id, { plan: 'free' })).toMatchObject({ plan: 'free', monthlyLimit: 10_000 })
  })

  it('refuses normal users, API keys and bad input with envelopes, changing nothing', async () => {
    const { user, key } = await setupProject(collector)
    const before = await billing(user)
    const cases: [() => Promise<unknown>, number, string][] = [
      [() => setPlan(user.id, { plan: 'enterprise', monthlyLimit: 1 }, user.accessToken), 403, 'FORBIDDEN'],
      [() => setPlan(user.id, { plan: 'enterprise', monthlyLimit: 1 }, key.key), 401, 'UNAUTHORIZED'],
      [() => collector.client.put(`/v1/admin/users/${user.id}/plan`, { plan: 'pro' }), 401, 'UNAUTHORIZED'],
      [() => setPlan(user.id, { plan: 'enterprise' }), 400, 'VALIDATION_ERROR'],
      [() => setPlan(user.id, { plan: 'pro', monthlyLimit: 5 }), 400, 'VALIDATION_ERROR'],
      [() => setPlan(user.id, { plan: 'gold' }), 400, 'VALIDATION_ERROR'],
      [() => setPlan(user.id, { plan: 'enterprise', monthlyLimit: -1 }), 400, 'VALIDATION_ERROR'],
      [() => setPlan(user.id, { plan: 'enterprise', monthlyLimit: 1.5 }), 400, 'VALIDATION_ERROR'],
      [() => setPlan(user.id, { plan: 'enterprise', monthlyLimit: '10' }), 400, 'VALIDATION_ERROR'],
      [() => setPlan(user.id, { plan: 'free', extra: true }), 400, 'VALIDATION_ERROR'],
      [() => setPlan(randomUUID(), { plan: 'pro' }), 404, 'NOT_FOUND'],
      [() => setPlan('not-a-uuid', { plan: 'pro' }), 404, 'NOT_FOUND'],
      [
        () => collector.client.send('PUT', `/v1/admin/users/${user.id}/plan`, { token: admin.accessToken, headers: { 'content-type': 'application/json' }, body: undefined }),
        400,
        'VALIDATION_ERROR',
      ],
    ]
    for (const [call, status, code] of cases) {
      const err = await failure(call())
      expect([err.status, err.code]).toEqual([status, code])
    }
    expect(await billing(user)).toEqual(before)
  })

  it('keeps billing routes to the signed-in user: an API key is refused', async () => {
    const { key } = await setupProject(collector)
    const err = await failure(collector.client.get('/v1/billing', { token: key.key }))
    expect([err.status, err.code]).toEqual([401, 'UNAUTHORIZED'])
    expect((await failure(collector.client.get('/v1/billing'))).status).toBe(401)
  })
})

describe('without Stripe and with PLAN_LIMITS=off', () => {
  let open: TestCollector
  beforeAll(async () => {
    open = await startTestCollector({ env: { PLAN_LIMITS: 'off' } })
  })
  afterAll(() => open.close())

  it('stores past the plan limit and still counts; the Stripe routes answer 503 BILLING_NOT_CONFIGURED and the webhook 503 WEBHOOK_NOT_CONFIGURED', async () => {
    const first = await signUp(open)
    const { user, key } = await setupProject(open)
    await open.client.put(`/v1/admin/users/${user.id}/plan`, { plan: 'enterprise', monthlyLimit: 3 }, { token: first.accessToken })
    const result = await open.client.post<BatchResult>('/v1/llm/requests/batch', { records: records(8) }, { token: key.key })
    expect(result.accepted).toBe(8)
    expect(await open.client.get<BillingInfo>('/v1/billing', { token: user.accessToken })).toMatchObject({ usage: 8, monthlyLimit: 3, limitsEnforced: false })
    const calls: [() => Promise<unknown>, number, string][] = [
      [() => open.client.post('/v1/billing/checkout', { plan: 'pro' }, { token: user.accessToken }), 503, 'BILLING_NOT_CONFIGURED'],
      [() => open.client.post('/v1/billing/portal', undefined, { token: user.accessToken }), 503, 'BILLING_NOT_CONFIGURED'],
      [() => open.client.get('/v1/billing/invoices', { token: user.accessToken }), 503, 'BILLING_NOT_CONFIGURED'],
      [() => open.client.send('POST', '/v1/webhooks/stripe', { body: { id: 'evt_1' }, headers: { 'stripe-signature': 't=1,v1=00' } }), 503, 'WEBHOOK_NOT_CONFIGURED'],
    ]
    for (const [call, status, code] of calls) {
      const err = await failure(call())
      expect([err.status, err.code]).toEqual([status, code])
    }
  })
})
