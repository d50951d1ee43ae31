import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Incident, IncidentDetail, LlmRecordInput } from '@llmguard/shared'
import { createRcaClient } from '../src/integrations/openai.js'
import { analyzeIncident, MAX_RCA_ATTEMPTS } from '../src/incidents/rca.js'
import { claimAnalysis, findIncident, releaseAnalysis } from '../src/incidents/store.js'
import { startFakeOpenAI, VALID_ANSWER, type FakeOpenAI } from './fakes/openai.js'
import { ownDatabase, startTestCollector, type TestCollector } from './helpers/collector.js'
import { count, setupProject, type TestUser } from './helpers/accounts.js'

let fake: FakeOpenAI
let collector: TestCollector
let owner: TestUser
let key: string
let incident: Incident

const rec = (over: Partial<LlmRecordInput> = {}): LlmRecordInput => ({ prompt: 'summarise this', response: 'ok', model: 'gpt-4o', latency: 800, ...over })

beforeAll(async () => {
  fake = await startFakeOpenAI('valid')
  collector = await startTestCollector({ env: { OPENAI_API_KEY: 'sk-test-fake', OPENAI_BASE_URL: fake.url, RCA_MODEL: 'gpt-4-rca' } })
  const setup = await setupProject(collector)
  owner = setup.user
  key = setup.key.key
  await collector.client.post('/v1/llm/requests/batch', { records: [rec(), rec(), rec({ latency: 7200 }), rec({ latency: 9100 })] }, { token: key })
  await collector.app.incidents.rca.idle()
  const [row] = await collector.sql<{ id: string }[]>`select id from incidents`
  incident = (await findIncident(collector.sql, row!.id))!
})
afterAll(async () => {
  await collector.close()
  await fake.close()
})

describe('root-cause analysis', () => {
  it('asks OpenAI (RCA_MODEL, OPENAI_BASE_URL) through the real client and stores the validated answer', async () => {
    expect(incident.rca).toMatchObject({ ...VALID_ANSWER, source: 'openai', metadata: { confidence: 0.8, model: 'gpt-4-rca', relatedRequests: 2 } })
    expect(incident.rcaPending).toBe(false)
    const sent = fake.requests.at(-1)!
    expect(sent.model).toBe('gpt-4-rca')
    expect(sent.authorization).toBe('Bearer sk-test-fake')
    const user = JSON.parse(sent.messages[1]!.content)
    expect(user.incident).toMatchObject({ type: 'latency', key: 'gpt-4o' })
    expect(user.relatedRequests.map((r: { latency: number }) => r.latency).sort()).toEqual([7200, 9100])
    expect(JSON.stringify(user)).not.toContain('summarise this') // no prompt text leaves the collector
  })

  it("falls back with an error message PostgreSQL can store, whatever OpenAI's error text holds", async () => {
    fake.mode = 'error_unstorable'
    const client = createRcaClient({ apiKey: 'sk-test-fake', baseUrl: fake.url, model: 'gpt-4', timeoutMs: 300 })
    const rca = await analyzeIncident(collector.sql, incident, client, new Date())
    fake.mode = 'valid'
    expect(rca.metadata.fallbackReason).toBe('error')
    const detail = String(rca.metadata.fallbackDetail)
    expect(detail).toContain('a\uFFFDb and \uFFFD')
    // what the store does with it: jsonb refuses a NUL or a lone surrogate
    const [row] = await collector.sql<{ detail: string }[]>`select (${collector.sql.json(rca as never)}::jsonb) -> 'metadata' ->> 'fallbackDetail' as detail`
    expect(row!.detail).toBe(detail)
  })

  it("keeps the operator's OpenAI key out of the stored fallback detail, whatever a proxy echoes", async () => {
    fake.mode = 'error_echo_key'
    const client = createRcaClient({ apiKey: 'sk-test-fake-operator-key', baseUrl: fake.url, model: 'gpt-4', timeoutMs: 300 })
    const rca = await analyzeIncident(collector.sql, incident, client, new Date())
    fake.mode = 'valid'
    expect(rca.metadata).toMatchObject({ fallbackReason: 'error', fallbackDetail: 'OpenAI answered 401: 401 invalid key [redacted]' })
    expect(JSON.stringify(rca)).not.toContain('sk-test-fake-operator-key')
  })

  it.each([
    ['invalid_json', 'invalid_response'],
    ['wrong_shape', 'invalid_response'],
    ['error_500', 'error'],
    ['hang', 'timeout'],
  ] as const)('falls back to the heuristic analysis when OpenAI answers %s', async (mode, reason) => {
    fake.mode = mode
    const client = createRcaClient({ apiKey: 'sk-test-fake', baseUrl: fake.url, model: 'gpt-4', timeoutMs: 300 })
    const started = Date.now()
    const rca = await analyzeIncident(collector.sql, incident, client, new Date())
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(rca.source).toBe('heuristic')
    expect(rca.metadata.fallbackReason).toBe(reason)
    // the heuristic names the numbers: what rose, by how much, on which model, since when
    expect(rca.rootCause).toContain('gpt-4o')
    expect(rca.rootCause).toContain('9,100 ms')
    expect(rca.rootCause).toContain(incident.firstSeenAt)
    expect(rca.rootCause).toMatch(/4,475 ms/) // the hour's average: (800 + 800 + 7200 + 9100) / 4
    expect(rca.recommendedFix.length).toBeGreaterThan(20)
    expect(rca.affectedRequests).toBe(2)
    fake.mode = 'valid'
  })

  it('sends OpenAI a bounded prompt: error messages cut short, withheld when they hold personal data or keys', async () => {
    const { key: { key: k } } = await setupProject(collector)
    const leaky = 'upstream said: customer bob@example.com card 4111 1111 1111 1111 ' + 'x'.repeat(9_900)
    const records = Array.from({ length: 20 }, (_, i) =>
      rec({ status: 'error', latency: 300, error: { type: 'server_error', message: i % 2 ? leaky : `Bad gateway ${'y'.repeat(9_900)}`, status: 500 } }),
    )
    const before = fake.requests.length
    await collector.client.post('/v1/llm/requests/batch', { records }, { token: k })
    await collector.app.incidents.rca.idle()
    const sent = fake.requests.slice(before).at(-1)!
    const content = sent.messages[1]!.content
    expect(content.length).toBeLessThanOrEqual(16_000)
    expect(content).not.toContain('bob@example.com')
    expect(content).not.toContain('4111 1111 1111 1111')
    const user = JSON.parse(content)
    expect(user.relatedRequests.length).toBeGreaterThan(0)
    const messages = user.relatedRequests.map((r: { error: { message: string } }) => r.error.message) as string[]
    expect(messages.every((m) => m.length <= 201)).toBe(true)
    expect(messages.some((m) => m.startsWith('Bad gateway'))).toBe(true)
    expect(messages.filter((m) => !m.startsWith('Bad gateway')).every((m) => m === '[withheld: holds email address, payment card number]')).toBe(true)
  })

  it("leaves the SDK's own blocks out of an error incident's evidence, as the rules do", async () => {
    const {
      key: { key: k },
      project,
    } = await setupProject(collector)
    const now = Date.now()
    const provider = Array.from({ length: 12 }, (_, i) =>
      rec({ status: 'error', error: { type: 'server_error', message: 'Bad gateway', status: 503 }, timestamp: new Date(now - 120_000 + i).toISOString() }),
    )
    const blocked = Array.from({ length: 20 }, (_, i) =>
      rec({
        status: 'error',
        latency: 0,
        userId: 'alice@example.com',
        metadata: { llmguardBlocked: 'USER_RATE_LIMITED' },
        error: { type: 'USER_RATE_LIMITED', message: 'user "alice" is limited to 5 calls per minute' },
        timestamp: new Date(now - 60_000 + i).toISOString(),
      }),
    )
    const before = fake.requests.length
    await collector.client.post('/v1/llm/requests/batch', { records: [...provider, ...blocked] }, { token: k })
    await collector.app.incidents.rca.idle()
    const sent = fake.requests.slice(before).map((r) => JSON.parse(r.messages[1]!.content)).find((u) => u.incident.type === 'error_rate')
    expect(sent).toBeDefined()
    expect(new Set(sent.relatedRequests.map((r: { error: { type: string } }) => r.error.type))).toEqual(new Set(['server_error']))
    expect(sent.relatedRequests).toHaveLength(12)
    const [row] = await collector.sql<{ id: string }[]>`select id from incidents where project_id = ${project.id} and type = 'error_rate'`
    const heuristic = await analyzeIncident(collector.sql, (await findIncident(collector.sql, row!.id))!, undefined, new Date())
    expect(heuristic.rootCause).not.toContain('USER_RATE_LIMITED')
  })

  it('stores an answer holding a NUL made storable, in one call (it is not paid for again every lease)', async () => {
    const asked = fake.requests.length
    fake.answer = { ...VALID_ANSWER, rootCause: 'the provider\u0000 degraded', metadata: { note: 'lone \ud800 surrogate' } }
    try {
      await collector.client.post(`/v1/incidents/${incident.id}/rca`, {}, { token: owner.accessToken })
      await collector.app.incidents.rca.idle()
    } finally {
      fake.answer = VALID_ANSWER
    }
    expect(fake.requests.length).toBe(asked + 1)
    const stored = (await findIncident(collector.sql, incident.id))!
    expect(stored.rcaPending).toBe(false)
    expect(stored.rca).toMatchObject({ source: 'openai', rootCause: 'the provider\ufffd degraded', metadata: { note: 'lone \ufffd surrogate' } })
  })

  it(`stops asking OpenAI after ${MAX_RCA_ATTEMPTS} attempts that stored nothing, and stores the heuristic analysis`, async () => {
    const asked = fake.requests.length
    await collector.sql`
      insert into incident_analyses (incident_id, attempts) values (${incident.id}, ${MAX_RCA_ATTEMPTS})
      on conflict (incident_id) do update set attempts = ${MAX_RCA_ATTEMPTS}, claimed_until = null`
    expect(await collector.app.incidents.rca.runNow(incident.id)).toBe(true)
    expect(fake.requests.length).toBe(asked)
    const stored = (await findIncident(collector.sql, incident.id))!
    expect(stored.rca).toMatchObject({ source: 'heuristic', metadata: { fallbackReason: 'error', fallbackDetail: expect.stringContaining('gave up') } })
    expect(stored.rcaPending).toBe(false)
  })

  it("spends at most RCA_DAILY_LIMIT OpenAI analyses a day on one user's incidents; the rest get the heuristic one", async () => {
    const limited = await startTestCollector({ env: { OPENAI_API_KEY: 'sk-test-fake', OPENAI_BASE_URL: fake.url, RCA_DAILY_LIMIT: '2' } })
    try {
      const a = await setupProject(limited)
      const b = await setupProject(limited)
      const asked = fake.requests.length
      // five model names, five latency incidents in one batch
      const slow = Array.from({ length: 5 }, (_, i) => rec({ model: `fanout-${i}`, latency: 60_000 }))
      await limited.client.post('/v1/llm/requests/batch', { records: slow }, { token: a.key.key })
      await limited.app.incidents.rca.idle()
      expect(fake.requests.length - asked).toBe(2)
      const rcas = await limited.sql<{ source: string; reason: string | null }[]>`
        select rca->>'source' as source, rca->'metadata'->>'fallbackReason' as reason from incidents where project_id = ${a.project.id}`
      expect(rcas).toHaveLength(5)
      expect(rcas.filter((r) => r.source === 'openai')).toHaveLength(2)
      expect(rcas.filter((r) => r.source === 'heuristic').map((r) => r.reason)).toEqual(['budget', 'budget', 'budget'])
      // another user's budget is their own
      await limited.client.post('/v1/llm/requests', rec({ model: 'other-user', latency: 60_000 }), { token: b.key.key })
      await limited.app.incidents.rca.idle()
      expect(fake.requests.length - asked).toBe(3)
    } finally {
      await limited.close()
    }
  })

  it('a claim handed back at a shutdown does not count as an attempt', async () => {
    await collector.sql`
      insert into incident_analyses (incident_id, attempts) values (${incident.id}, 0)
      on conflict (incident_id) do update set attempts = 0, claimed_until = null`
    try {
      const claim = await claimAnalysis(collector.sql, 60_000, incident.id)
      expect(claim!.attempts).toBe(1)
      await releaseAnalysis(collector.sql, incident.id)
      const [row] = await collector.sql`select attempts, claimed_until from incident_analyses where incident_id = ${incident.id}`
      expect(row).toEqual({ attempts: 0, claimed_until: null })
    } finally {
      await collector.sql`delete from incident_analyses where incident_id = ${incident.id}`
    }
  })

  it('a restart with a pending analysis completes it', async () => {
    fake.mode = 'hang'
    // a database of its own, shared by the two lives of one collector
    const own = await ownDatabase()
    const where = { ...own.where, env: { OPENAI_API_KEY: 'sk-x', OPENAI_BASE_URL: fake.url } }
    try {
      const first = await startTestCollector(where)
      const s = await setupProject(first)
      const asked = fake.requests.length
      await first.client.post('/v1/llm/requests', rec({ latency: 8000, model: 'o3' }), { token: s.key.key })
      // the worker is stuck on the hanging OpenAI call: the analysis is still pending
      for (let i = 0; i < 200 && fake.requests.length === asked; i++) await new Promise((r) => setTimeout(r, 20))
      expect(fake.requests.length).toBe(asked + 1)
      expect(await count(first, 'incident_analyses')).toBe(1)
      await first.close() // aborts the call and gives the claim back
      fake.mode = 'valid'
      const second = await startTestCollector(where)
      try {
        for (let i = 0; i < 200 && (await count(second, 'incident_analyses')) > 0; i++) await new Promise((r) => setTimeout(r, 20))
        const [row] = await second.sql<{ id: string }[]>`select id from incidents`
        const detail = await second.client.get<IncidentDetail>(`/v1/incidents/${row!.id}`, { token: s.user.accessToken })
        expect(detail.rca).toMatchObject({ source: 'openai', rootCause: VALID_ANSWER.rootCause })
        expect(detail.rcaPending).toBe(false)
      } finally {
        await second.close()
      }
    } finally {
      fake.mode = 'valid'
      await own.remove()
    }
  })

  it('regenerating stores a new analysis (POST /v1/incidents/:id/rca)', async () => {
    fake.answer = { ...VALID_ANSWER, rootCause: 'a second opinion', severity: 'critical' }
    const res = await collector.client.send<Incident>('POST', `/v1/incidents/${incident.id}/rca`, { token: owner.accessToken })
    expect(res.status).toBe(200)
    expect(res.data.rca).toMatchObject({ source: 'openai', rootCause: 'a second opinion', severity: 'critical' })
    fake.answer = VALID_ANSWER
  })

  it('a regenerate while an analysis runs waits for it (202) and its newer answer is the one kept', async () => {
    const calls = fake.requests.length
    const regenerate = () => collector.client.send<Incident>('POST', `/v1/incidents/${incident.id}/rca`, { token: owner.accessToken })
    try {
      fake.answer = { ...VALID_ANSWER, rootCause: 'the slow first answer' }
      fake.delayMs = 800
      const first = regenerate()
      // the first analysis is with OpenAI now
      while (fake.requests.length === calls) await new Promise((r) => setTimeout(r, 10))
      fake.answer = { ...VALID_ANSWER, rootCause: 'the answer to the latest request' }
      fake.delayMs = 0
      const second = await regenerate()
      expect(second.status).toBe(202)
      expect(second.data.rcaPending).toBe(true)
      // the first one finds itself superseded: not stored, and it says so
      expect((await first).status).toBe(202)
      await collector.app.incidents.rca.idle()
      const after = (await findIncident(collector.sql, incident.id))!
      expect(after.rca).toMatchObject({ rootCause: 'the answer to the latest request' })
      expect(after.rcaPending).toBe(false)
      expect(fake.requests.length - calls).toBe(2) // never two at once for one incident
    } finally {
      fake.answer = VALID_ANSWER
      fake.delayMs = 0
    }
  })
})
