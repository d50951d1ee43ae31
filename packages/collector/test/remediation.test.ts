import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Incident, LlmRecordInput, Page, Policy, Project, Remediation } from '@llmguard/shared'
import type { IngestContext } from '../src/ingest/pipeline.js'
import { startTestCollector, type TestCollector } from './helpers/collector.js'
import { count, createKey, createProject, failure, signUp, type TestUser } from './helpers/accounts.js'

let collector: TestCollector
let owner: TestUser
let stranger: TestUser

beforeAll(async () => {
  collector = await startTestCollector()
  owner = await signUp(collector)
  stranger = await signUp(collector)
})
afterAll(() => collector.close())

const as = (user: TestUser) => ({ token: user.accessToken })
const rec = (over: Partial<LlmRecordInput> = {}): LlmRecordInput => ({ prompt: 'hello', response: 'hi', model: 'gpt-4o', latency: 100, ...over })

interface Setup {
  project: Project
  key: string
  incident: Incident
}

/** A project with a key and one open latency incident (opened through the real ingest rules). */
async function setup(settings?: Record<string, unknown>, model = 'gpt-4o'): Promise<Setup> {
  const project = await createProject(collector, owner, `p-${randomUUID().slice(0, 8)}`)
  const key = await createKey(collector, owner, project.id)
  if (settings) await collector.client.patch(`/v1/projects/${project.id}/settings`, settings, as(owner))
  const incident = await openIncident(project, model)
  return { project, key: key.key, incident }
}

async function openIncident(project: Project, model: string): Promise<Incident> {
  const ctx: IngestContext = { projectId: project.id, ownerId: owner.id, sensitiveKeywords: [], priceOverrides: {}, receivedAt: new Date(), requestId: randomUUID() }
  await collector.app.ingest.ingest([rec({ latency: 9_000, model })], ctx)
  const page = await collector.client.get<Page<Incident>>(`/v1/projects/${project.id}/incidents`, { ...as(owner), query: { type: 'latency' } })
  const incident = page.items.find((i) => i.key === model)
  if (!incident) throw new Error('no incident opened')
  return incident
}

const policyOf = async (s: Setup, headers: Record<string, string> = {}) => collector.client.send<Policy>('GET', '/v1/llm/policy', { token: s.key, headers })
const policy = async (s: Setup) => (await policyOf(s)).data
const apply = (s: Setup, body: unknown, user = owner) =>
  collector.client.post<Remediation>(`/v1/incidents/${s.incident.id}/remediations`, body, as(user))
const rollback = (id: string, user = owner) => collector.client.post<Remediation>(`/v1/remediations/${id}/rollback`, undefined, as(user))
const list = (s: Setup, query: Record<string, string> = {}, user = owner) =>
  collector.client.get<Page<Remediation>>(`/v1/incidents/${s.incident.id}/remediations`, { ...as(user), query })

/** The policy without its version, for comparing contents. */
const body = ({ version: _v, ...rest }: Policy) => rest

describe('the six actions', () => {
  const cases: { name: string; request: Record<string, unknown>; change: Partial<Policy>; before: unknown; after: unknown }[] = [
    { name: 'switch_model (every model)', request: { actionType: 'switch_model', parameters: { to: 'gpt-4o-mini' } }, change: { modelOverrides: { '*': 'gpt-4o-mini' } }, before: { modelOverrides: { '*': null } }, after: { modelOverrides: { '*': 'gpt-4o-mini' } } },
    { name: 'switch_model (from one model)', request: { actionType: 'switch_model', parameters: { from: 'gpt-4o', to: 'gpt-4o-mini' } }, change: { modelOverrides: { 'gpt-4o': 'gpt-4o-mini' } }, before: { modelOverrides: { 'gpt-4o': null } }, after: { modelOverrides: { 'gpt-4o': 'gpt-4o-mini' } } },
    { name: 'increase_safety_threshold', request: { actionType: 'increase_safety_threshold', parameters: { threshold: 50 } }, change: { safetyThreshold: 50, blockOnRisk: true }, before: { safetyThreshold: 80, blockOnRisk: false }, after: { safetyThreshold: 50, blockOnRisk: true } },
    { name: 'disable_endpoint', request: { actionType: 'disable_endpoint', parameters: { endpoint: 'chat.completions' } }, change: { disabledEndpoints: ['chat.completions'] }, before: { disabledEndpoints: { 'chat.completions': false } }, after: { disabledEndpoints: { 'chat.completions': true } } },
    { name: 'change_system_prompt', request: { actionType: 'change_system_prompt', parameters: { systemPrompt: 'Answer briefly.' } }, change: { systemPrompt: 'Answer briefly.' }, before: { systemPrompt: null }, after: { systemPrompt: 'Answer briefly.' } },
    { name: 'rate_limit_user', request: { actionType: 'rate_limit_user', parameters: { userId: 'end-user-9', limitPerMinute: 5 } }, change: { userRateLimits: { 'end-user-9': 5 } }, before: { userRateLimits: { 'end-user-9': null } }, after: { userRateLimits: { 'end-user-9': 5 } } },
  ]

  it.each(cases)('$name changes the policy as specified, audits it, and its rollback restores it', async ({ request, change, before, after }) => {
    const s = await setup()
    const original = await policy(s)
    const applied = await apply(s, request)
    expect(applied).toMatchObject({ incidentId: s.incident.id, projectId: s.project.id, actionType: request.actionType, state: 'active', automatic: false, before, after, expiresAt: null, endedAt: null })
    expect(applied.appliedBy).toEqual({ kind: 'user', userId: owner.id })
    expect(applied.audit).toEqual([{ event: 'applied', actor: { kind: 'user', userId: owner.id }, at: applied.appliedAt, before, after }])
    const changed = await policy(s)
    expect(body(changed)).toEqual({ ...body(original), ...change })
    expect(changed.version).toBe(original.version + 1)

    const rolled = await rollback(applied.id)
    expect(rolled).toMatchObject({ id: applied.id, state: 'rolled_back', before, after })
    expect(rolled.endedAt).not.toBeNull()
    expect(rolled.audit.map((a) => a.event)).toEqual(['applied', 'rolled_back'])
    expect(rolled.audit[1]).toMatchObject({ actor: { kind: 'user', userId: owner.id }, before: after, after: before })
    const restored = await policy(s)
    expect(body(restored)).toEqual(body(original))
    expect(restored.version).toBe(original.version + 2)
  })

  it('reset_settings puts the policy back to the settings; its rollback brings the earlier actions back', async () => {
    const s = await setup({ systemPrompt: 'Settings prompt.', safetyThreshold: 70 })
    const original = await policy(s)
    await apply(s, { actionType: 'change_system_prompt', parameters: { systemPrompt: 'Incident prompt.' } })
    await apply(s, { actionType: 'switch_model', parameters: { to: 'gpt-4o-mini' } })
    await apply(s, { actionType: 'rate_limit_user', parameters: { userId: 'u1', limitPerMinute: 3 } })
    const remediated = await policy(s)
    const reset = await apply(s, { actionType: 'reset_settings' })
    expect(reset.before).toEqual({ systemPrompt: 'Incident prompt.', modelOverrides: { '*': 'gpt-4o-mini' }, userRateLimits: { u1: 3 } })
    expect(reset.after).toEqual({ systemPrompt: 'Settings prompt.', modelOverrides: { '*': null }, userRateLimits: { u1: null } })
    expect(body(await policy(s))).toEqual(body(original))
    await rollback(reset.id)
    expect(body(await policy(s))).toEqual(body(remediated))
  })

  it('reset_settings with nothing to reset touches nothing and leaves the version alone', async () => {
    const s = await setup()
    const v = (await policy(s)).version
    const reset = await apply(s, { actionType: 'reset_settings', parameters: {} })
    expect(reset).toMatchObject({ before: {}, after: {} })
    expect((await policy(s)).version).toBe(v)
  })
})

describe('rollback', () => {
  it('a later action on the same field → 409 ROLLBACK_CONFLICT and nothing changes; in reverse order both roll back', async () => {
    const s = await setup()
    const first = await apply(s, { actionType: 'change_system_prompt', parameters: { systemPrompt: 'First.' } })
    const second = await apply(s, { actionType: 'change_system_prompt', parameters: { systemPrompt: 'Second.' } })
    expect(second.before).toEqual({ systemPrompt: 'First.' })
    const before = await policy(s)
    const err = await failure(rollback(first.id))
    expect(err.status).toBe(409)
    expect(err.code).toBe('ROLLBACK_CONFLICT')
    expect(err.details).toEqual({ conflictingRemediationIds: [second.id] })
    expect(await policy(s)).toEqual(before)
    expect((await list(s)).items.map((r) => r.state)).toEqual(['active', 'active'])

    await rollback(second.id)
    expect((await policy(s)).systemPrompt).toBe('First.')
    await rollback(first.id)
    expect((await policy(s)).systemPrompt).toBeNull()
  })

  it('a later action on other fields (another model, another user) does not conflict', async () => {
    const s = await setup()
    const all = await apply(s, { actionType: 'switch_model', parameters: { to: 'gpt-4o-mini' } })
    await apply(s, { actionType: 'switch_model', parameters: { from: 'gpt-4.1', to: 'gpt-4.1-mini' } })
    const u1 = await apply(s, { actionType: 'rate_limit_user', parameters: { userId: 'u1', limitPerMinute: 3 } })
    await apply(s, { actionType: 'rate_limit_user', parameters: { userId: 'u2', limitPerMinute: 4 } })
    await rollback(all.id)
    await rollback(u1.id)
    const p = await policy(s)
    expect(p.modelOverrides).toEqual({ 'gpt-4.1': 'gpt-4.1-mini' })
    expect(p.userRateLimits).toEqual({ u2: 4 })
  })

  it('increase_safety_threshold conflicts with a later one; a later reset_settings conflicts with everything before it', async () => {
    const s = await setup()
    const a = await apply(s, { actionType: 'increase_safety_threshold', parameters: { threshold: 60 } })
    const b = await apply(s, { actionType: 'increase_safety_threshold', parameters: { threshold: 40 } })
    expect((await failure(rollback(a.id))).code).toBe('ROLLBACK_CONFLICT')
    await rollback(b.id)
    const c = await apply(s, { actionType: 'disable_endpoint', parameters: { endpoint: 'responses' } })
    const reset = await apply(s, { actionType: 'reset_settings' })
    for (const id of [a.id, c.id]) {
      const err = await failure(rollback(id))
      expect(err.code).toBe('ROLLBACK_CONFLICT')
      expect(err.details).toEqual({ conflictingRemediationIds: [reset.id] })
    }
  })

  it('rolling back twice → 409 CONFLICT; unknown or malformed ids → 404; nothing changes', async () => {
    const s = await setup()
    const r = await apply(s, { actionType: 'disable_endpoint', parameters: { endpoint: 'embeddings' } })
    await rollback(r.id)
    const v = (await policy(s)).version
    const again = await failure(rollback(r.id))
    expect(again.status).toBe(409)
    expect(again.code).toBe('CONFLICT')
    for (const id of [randomUUID(), 'not-a-uuid', '1']) {
      const err = await failure(rollback(id))
      expect(err.status).toBe(404)
      expect(err.code).toBe('NOT_FOUND')
    }
    expect((await policy(s)).version).toBe(v)
    expect((await list(s)).items[0]!.audit).toHaveLength(2)
  })
})

describe('policy version and ETag', () => {
  it('move exactly when the effective policy does: 304 after no-op actions and hidden settings changes', async () => {
    const s = await setup()
    const v0 = (await policyOf(s)).data.version
    const etag0 = `"${v0}"`
    const first = await apply(s, { actionType: 'rate_limit_user', parameters: { userId: 'u1', limitPerMinute: 3 } })
    const changed = await policyOf(s, { 'if-none-match': etag0 })
    expect(changed.status).toBe(200)
    expect(changed.headers.etag).toBe(`"${v0 + 1}"`)
    const etag1 = String(changed.headers.etag)

    // the same value again: a recorded action, no change of the policy
    const same = await apply(s, { actionType: 'rate_limit_user', parameters: { userId: 'u1', limitPerMinute: 3 } })
    expect(same.before).toEqual(same.after)
    expect((await policyOf(s, { 'if-none-match': etag1 })).status).toBe(304)
    // rolling back the no-op changes nothing either
    await rollback(same.id)
    expect((await policyOf(s, { 'if-none-match': etag1 })).status).toBe(304)

    // a settings change the active action hides is no change of the effective policy…
    await apply(s, { actionType: 'change_system_prompt', parameters: { systemPrompt: 'Remediated.' } })
    const etag2 = String((await policyOf(s)).headers.etag)
    await collector.client.patch(`/v1/projects/${s.project.id}/settings`, { systemPrompt: 'From settings.' }, as(owner))
    expect((await policyOf(s, { 'if-none-match': etag2 })).status).toBe(304)
    // …and one it does not hide is
    await collector.client.patch(`/v1/projects/${s.project.id}/settings`, { safetyThreshold: 65 }, as(owner))
    const after = await policyOf(s, { 'if-none-match': etag2 })
    expect(after.status).toBe(200)
    expect(after.data).toMatchObject({ systemPrompt: 'Remediated.', safetyThreshold: 65 })
    await rollback(first.id)
    expect((await policyOf(s, { 'if-none-match': String(after.headers.etag) })).status).toBe(200)
  })
})

describe('bad input', () => {
  const bad: [string, unknown][] = [
    ['unknown action', { actionType: 'reboot_server', parameters: {} }],
    ['no action', { parameters: { to: 'gpt-4o-mini' } }],
    ['no parameters', { actionType: 'switch_model' }],
    ['switch_model without to', { actionType: 'switch_model', parameters: { from: 'gpt-4o' } }],
    ['switch_model to ""', { actionType: 'switch_model', parameters: { to: ' ' } }],
    ['switch_model to itself', { actionType: 'switch_model', parameters: { from: 'gpt-4o', to: 'gpt-4o' } }],
    ['switch_model unknown parameter', { actionType: 'switch_model', parameters: { to: 'gpt-4o-mini', model: 'x' } }],
    ['switch_model to "*" (every model is a from, not a target)', { actionType: 'switch_model', parameters: { to: '*' } }],
    ['switch_model from "__proto__"', { actionType: 'switch_model', parameters: { from: '__proto__', to: 'gpt-4o-mini' } }],
    ['disable_endpoint "__proto__"', { actionType: 'disable_endpoint', parameters: { endpoint: '__proto__' } }],
    ['rate limit for user "__proto__"', { actionType: 'rate_limit_user', parameters: { userId: '__proto__', limitPerMinute: 3 } }],
    ['threshold over 100', { actionType: 'increase_safety_threshold', parameters: { threshold: 101 } }],
    ['threshold negative', { actionType: 'increase_safety_threshold', parameters: { threshold: -1 } }],
    ['threshold fractional', { actionType: 'increase_safety_threshold', parameters: { threshold: 50.5 } }],
    ['threshold as a string', { actionType: 'increase_safety_threshold', parameters: { threshold: '50' } }],
    ['disable_endpoint without endpoint', { actionType: 'disable_endpoint', parameters: {} }],
    ['disable_endpoint too long', { actionType: 'disable_endpoint', parameters: { endpoint: 'e'.repeat(101) } }],
    ['reset_settings with parameters', { actionType: 'reset_settings', parameters: { all: true } }],
    ['empty system prompt', { actionType: 'change_system_prompt', parameters: { systemPrompt: '' } }],
    ['system prompt null', { actionType: 'change_system_prompt', parameters: { systemPrompt: null } }],
    ['system prompt too long', { actionType: 'change_system_prompt', parameters: { systemPrompt: 'x'.repeat(32_769) } }],
    ['rate limit 0', { actionType: 'rate_limit_user', parameters: { userId: 'u', limitPerMinute: 0 } }],
    ['rate limit without user', { actionType: 'rate_limit_user', parameters: { limitPerMinute: 5 } }],
    ['unknown top-level field', { actionType: 'reset_settings', parameters: {}, dryRun: true }],
    ['an array', [{ actionType: 'reset_settings' }]],
  ]

  it.each(bad)('%s → 400 VALIDATION_ERROR and nothing applied', async (_name, request) => {
    const s = shared ?? (shared = await setup())
    const v = (await policy(s)).version
    const n = await count(collector, 'remediations')
    const err = await failure(apply(s, request))
    expect(err.status).toBe(400)
    expect(err.code).toBe('VALIDATION_ERROR')
    expect(err.details?.issues).toBeInstanceOf(Array)
    expect(err.requestId).toBeTruthy()
    expect(await count(collector, 'remediations')).toBe(n)
    expect((await policy(s)).version).toBe(v)
  })
  let shared: Setup | undefined

  it('malformed JSON → 400 MALFORMED_JSON; unknown or malformed incident ids → 404; nothing applied', async () => {
    const s = shared ?? (shared = await setup())
    const n = await count(collector, 'remediations')
    const res = await fetch(`${collector.url}/v1/incidents/${s.incident.id}/remediations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${owner.accessToken}`, 'content-type': 'application/json' },
      body: '{"actionType": "switch_model",',
    })
    expect(res.status).toBe(400)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('MALFORMED_JSON')
    for (const id of [randomUUID(), 'nope', '%E0%A4%A']) {
      const err = await failure(collector.client.post(`/v1/incidents/${id}/remediations`, { actionType: 'reset_settings' }, as(owner)))
      expect(err.status).toBe(404)
      expect((await failure(collector.client.get(`/v1/incidents/${id}/remediations`, as(owner)))).status).toBe(404)
    }
    expect((await failure(list(s, { limit: '101' }))).status).toBe(400)
    expect((await failure(list(s, { page: '0' }))).status).toBe(400)
    expect(await count(collector, 'remediations')).toBe(n)
  })
})

describe('ownership', () => {
  it("another user cannot apply, list or roll back actions on someone else's incident; nothing changes", async () => {
    const s = await setup()
    const mine = await apply(s, { actionType: 'switch_model', parameters: { to: 'gpt-4o-mini' } })
    const before = await policy(s)
    const n = await count(collector, 'remediations')
    const audit = await count(collector, 'remediation_audit')
    const denied = [
      await failure(apply(s, { actionType: 'disable_endpoint', parameters: { endpoint: 'chat.completions' } }, stranger)),
      await failure(list(s, {}, stranger)),
      await failure(rollback(mine.id, stranger)),
    ]
    for (const err of denied) {
      expect(err.status).toBe(403)
      expect(err.code).toBe('FORBIDDEN')
    }
    expect(await policy(s)).toEqual(before)
    expect(await count(collector, 'remediations')).toBe(n)
    expect(await count(collector, 'remediation_audit')).toBe(audit)
    expect((await list(s)).items[0]).toMatchObject({ id: mine.id, state: 'active' })
    // no token at all, and an API key, are not a user
    expect((await failure(collector.client.post(`/v1/remediations/${mine.id}/rollback`, undefined))).status).toBe(401)
    expect((await failure(collector.client.get(`/v1/incidents/${s.incident.id}/remediations`, { token: s.key }))).status).toBe(401)
  })
})

describe('list', () => {
  it('pages newest first with state and the audit trail', async () => {
    const s = await setup()
    const a = await apply(s, { actionType: 'change_system_prompt', parameters: { systemPrompt: 'A' } })
    const b = await apply(s, { actionType: 'disable_endpoint', parameters: { endpoint: 'completions' } })
    await rollback(b.id)
    const page = await list(s, { limit: '1' })
    expect(page).toMatchObject({ page: 1, limit: 1, total: 2, totalCapped: false })
    expect(page.items.map((r) => [r.id, r.state])).toEqual([[b.id, 'rolled_back']])
    const second = await list(s, { limit: '1', page: '2' })
    expect(second.items.map((r) => [r.id, r.state, r.audit.length])).toEqual([[a.id, 'active', 1]])
  })
})

describe('concurrency', () => {
  it('concurrent actions and settings changes all land, one version each, without deadlock', async () => {
    const s = await setup()
    const v0 = (await policy(s)).version
    await Promise.all([
      ...Array.from({ length: 6 }, (_, i) => apply(s, { actionType: 'rate_limit_user', parameters: { userId: `c${i}`, limitPerMinute: i + 1 } })),
      collector.client.patch(`/v1/projects/${s.project.id}/settings`, { safetyThreshold: 61 }, as(owner)),
      collector.client.patch(`/v1/projects/${s.project.id}/settings`, { blockOnRisk: true }, as(owner)),
    ])
    const p = await policy(s)
    expect(p.userRateLimits).toEqual({ c0: 1, c1: 2, c2: 3, c3: 4, c4: 5, c5: 6 })
    expect(p).toMatchObject({ safetyThreshold: 61, blockOnRisk: true, version: v0 + 8 })
  })

  it('a project deleted while its actions are applied and rolled back and its settings change: each request succeeds or is a 404, never a 500 or a deadlock', async () => {
    const outcomes = new Map<string, number>()
    for (let round = 0; round < 6; round++) {
      const s = await setup()
      const applied = await Promise.all(Array.from({ length: 4 }, (_, i) => apply(s, { actionType: 'rate_limit_user', parameters: { userId: `d${i}`, limitPerMinute: 3 } })))
      const results = await Promise.allSettled([
        ...applied.map((a) => rollback(a.id)),
        collector.client.delete(`/v1/projects/${s.project.id}`, as(owner)),
        ...Array.from({ length: 2 }, (_, i) => apply(s, { actionType: 'rate_limit_user', parameters: { userId: `e${i}`, limitPerMinute: 3 } })),
        collector.client.patch(`/v1/projects/${s.project.id}/settings`, { safetyThreshold: 55 }, as(owner)),
      ])
      for (const r of results) {
        const status = r.status === 'fulfilled' ? 200 : (r.reason as { status?: number }).status ?? 0
        const label = r.status === 'fulfilled' ? 'ok' : `${status} ${(r.reason as Error).message}`
        outcomes.set(label, (outcomes.get(label) ?? 0) + 1)
      }
      expect(await count(collector, `projects where id = '${s.project.id}'`)).toBe(0)
    }
    // every failure is the project (or its action) found gone
    for (const label of outcomes.keys()) expect(label).toMatch(/^(ok|404 (project|remediation|incident) not found)$/)
  })
})
