import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BatchResult, LogDetail, LogQueryInput, LogResult, Page } from '@llmguard/shared'
import { onRealPostgres, startTestCollector, type TestCollector } from './helpers/collector.js'
import { failure, setupProject, signUp, type TestUser } from './helpers/accounts.js'

let collector: TestCollector
let owner: TestUser
let projectId: string
let key: string
const records: { id: string; prompt: string; response: string; model: string; latency: number; status: 'success' | 'error'; userId?: string; timestamp: string }[] = []

const T0 = Date.parse('2026-11-01T00:00:00Z')
const texts = [
  'What is 100% of the budget?',
  'Use the snake_case name please',
  'Path C:\\temp\\file and a backslash',
  `It's a quote "here"`,
  'plain prompt about the weather',
  'another plain prompt about cooking',
]

beforeAll(async () => {
  // the total-cap test stores over 10,000 records: more than the free plan's month allows
  collector = await startTestCollector({ env: { PLAN_LIMITS: 'off' } })
  const setup = await setupProject(collector)
  owner = setup.user
  projectId = setup.project.id
  key = setup.key.key
  for (let i = 0; i < 40; i++) {
    records.push({
      id: randomUUID(),
      prompt: `${texts[i % texts.length]} #${i}`,
      response: i % 7 === 0 ? 'The Needle is here' : 'ok',
      model: ['gpt-4o', 'gpt-4o-mini', 'o3-mini'][i % 3]!,
      latency: 100 + ((i * 37) % 500),
      status: i % 5 === 0 ? 'error' : 'success',
      ...(i % 4 === 0 ? { userId: 'alice' } : {}),
      timestamp: new Date(T0 + i * 60_000).toISOString(),
    })
  }
  const res = await collector.client.post<BatchResult>('/v1/llm/requests/batch', { records }, { token: key })
  expect(res.accepted).toBe(40)
})
afterAll(() => collector.close())

const search = (query: LogQueryInput, token = owner.accessToken) =>
  collector.client.get<Page<LogResult>>(`/v1/projects/${projectId}/logs`, { query: query as Record<string, string>, token })

const ids = (page: Page<LogResult>) => page.items.map((i) => i.id)
const expected = (pred: (r: (typeof records)[number]) => boolean) => records.filter(pred)

describe('GET /v1/projects/:id/logs', () => {
  it('lists newest first with the LogResult fields and an exact total', async () => {
    const page = await search({ limit: 5 })
    expect(page.total).toBe(40)
    expect(page.totalCapped).toBe(false)
    expect(page.items).toHaveLength(5)
    expect(page.items[0]!.id).toBe(records[39]!.id)
    expect(Object.keys(page.items[0]!).sort()).toEqual(
      ['cost', 'createdAt', 'id', 'latency', 'metadata', 'model', 'policyViolation', 'prompt', 'response', 'riskReasons', 'riskScore', 'status', 'timestamp', 'tokens', 'userId'].sort(),
    )
  })

  it.each([
    ['model', { model: 'o3-mini' }, (r: (typeof records)[number]) => r.model === 'o3-mini'],
    ['status', { status: 'error' }, (r: (typeof records)[number]) => r.status === 'error'],
    ['userId', { userId: 'alice' }, (r: (typeof records)[number]) => r.userId === 'alice'],
    ['dates', { startDate: new Date(T0 + 10 * 60_000).toISOString(), endDate: new Date(T0 + 20 * 60_000).toISOString() }, (r: (typeof records)[number]) => Date.parse(r.timestamp) >= T0 + 600_000 && Date.parse(r.timestamp) < T0 + 1_200_000],
    ['search (case-insensitive, response too)', { search: 'needle' }, (r: (typeof records)[number]) => r.response.includes('Needle')],
    ['combined', { model: 'gpt-4o', status: 'error', search: 'BUDGET' }, (r: (typeof records)[number]) => r.model === 'gpt-4o' && r.status === 'error' && r.prompt.includes('budget')],
  ] as const)('filters by %s', async (_name, query, pred) => {
    const page = await search({ ...query, limit: 100 })
    const want = expected(pred)
    expect(want.length).toBeGreaterThan(0)
    expect(page.total).toBe(want.length)
    expect(new Set(ids(page))).toEqual(new Set(want.map((r) => r.id)))
  })

  it('filters by risk score range', async () => {
    const all = await search({ limit: 100 })
    const page = await search({ minRiskScore: 20, maxRiskScore: 100, limit: 100 })
    expect(new Set(ids(page))).toEqual(new Set(all.items.filter((i) => i.riskScore >= 20).map((i) => i.id)))
    expect(page.total).toBeGreaterThan(0)
  })

  it.each([
    ['%', (p: string) => p.includes('%')],
    ['_', (p: string) => p.includes('_')],
    ['\\', (p: string) => p.includes('\\')],
    [`'`, (p: string) => p.includes(`'`)],
    ['"here"', (p: string) => p.includes('"here"')],
  ])('matches %s literally', async (term, pred) => {
    const page = await search({ search: term, limit: 100 })
    const want = records.filter((r) => pred(r.prompt) || pred(r.response))
    expect(want.length).toBeGreaterThan(0)
    expect(new Set(ids(page))).toEqual(new Set(want.map((r) => r.id)))
  })

  it('finds the same records through the search index as through the unindexed tail', async () => {
    const before = await search({ search: 'cooking', limit: 100 })
    const indexed = await collector.app.searchIndexer.runOnce(0) // nothing is in flight here
    expect(indexed).toBeGreaterThanOrEqual(40)
    const [state] = await collector.sql<{ n: number }[]>`select count(*)::int as n from llm_request_text where project_id = ${projectId}`
    expect(state!.n).toBe(40)
    const after = await search({ search: 'cooking', limit: 100 })
    expect(ids(after).sort()).toEqual(ids(before).sort())
    expect(after.total).toBe(records.filter((r) => r.prompt.includes('cooking')).length)
    // a record stored after indexing is found through the tail
    const late = randomUUID()
    await collector.client.post('/v1/llm/requests', { id: late, prompt: 'late cooking question', model: 'gpt-4o', latency: 1 }, { token: key })
    expect(ids(await search({ search: 'cooking', limit: 100 }))).toContain(late)
    // and a match across the prompt/response boundary of the indexed text is not a match
    expect((await search({ search: 'please\nok' })).total).toBe(0)
    // the indexed text is stored case-folded: matching stays case-insensitive and literal
    const needles = records.filter((r) => r.response.includes('Needle')).map((r) => r.id).sort()
    for (const term of ['NEEDLE', 'needle', 'The Needle']) expect(ids(await search({ search: term, limit: 100 })).sort()).toEqual(needles)
    for (const [term, want] of [['100%', 'What is 100%'], ['SNAKE_CASE', 'snake_case'], ['C:\\TEMP\\', 'C:\\temp\\']] as const) {
      const found = await search({ search: term, limit: 100 })
      expect(found.total).toBe(records.filter((r) => r.prompt.includes(want)).length)
      expect(found.total).toBeGreaterThan(0)
    }
  })

  it.each([
    ['latency', 'asc'],
    ['latency', 'desc'],
    ['riskScore', 'desc'],
    ['timestamp', 'asc'],
    // one batch: every record shares its createdAt, so the pages rest on the id tie-break alone
    ['createdAt', 'asc'],
  ] as const)('sorts by %s %s with stable pages', async (sortBy, sortOrder) => {
    const all = await search({ sortBy, sortOrder, limit: 100, model: 'gpt-4o' })
    const field = sortBy
    const values = all.items.map((i) => (field === 'timestamp' || field === 'createdAt' ? Date.parse(i[field]) : i[field]))
    const sorted = [...values].sort((a, b) => (sortOrder === 'asc' ? a - b : b - a))
    expect(values).toEqual(sorted)
    const pages: string[] = []
    for (let page = 1; page <= 3; page++) pages.push(...ids(await search({ sortBy, sortOrder, limit: 5, page, model: 'gpt-4o' })))
    expect(pages).toEqual(ids(all).slice(0, 15))
  })

  it.each([
    [{ limit: 0 }, 'query.limit'],
    [{ limit: 101 }, 'query.limit'],
    [{ page: 0 }, 'query.page'],
    [{ sortBy: 'prompt' }, 'query.sortBy'],
    [{ minRiskScore: 80, maxRiskScore: 10 }, 'query.minRiskScore'],
    [{ startDate: 'yesterday' }, 'query.startDate'],
    [{ startDate: '0000-01-01T00:00:00Z' }, 'query.startDate'],
    [{ endDate: '9999-12-31T23:59:59-12:00' }, 'query.endDate'],
    // PostgreSQL refuses these: a 400 here, not a 500 from the query
    [{ startDate: '2026-01-01T00:00:00+16:00' }, 'query.startDate'],
    [{ endDate: `2026-01-01T00:00:00.${'1'.repeat(150)}Z` }, 'query.endDate'],
    [{ createdFrom: 'soon' }, 'query.createdFrom'],
    // a mistyped parameter is not ignored (it would answer as if no filter were given)
    [{ modle: 'gpt-4o' }, 'query.modle'],
    // not whole-number digits: Number() would make 0 (filtering silently), 16 or 10 of them
    [{ maxRiskScore: '' }, 'query.maxRiskScore'],
    [{ minRiskScore: ' ' }, 'query.minRiskScore'],
    [{ limit: '0x10' }, 'query.limit'],
    [{ limit: '1e1' }, 'query.limit'],
    [{ page: '2.0' }, 'query.page'],
  ])('rejects %j with a 400 naming the parameter', async (query, path) => {
    const err = await failure(search(query as LogQueryInput))
    expect(err.status).toBe(400)
    expect(JSON.stringify(err.details)).toContain(path)
  })

  it.each([
    [{ limit: 0 }, 'query.limit: must be at least 1'],
    [{ limit: 101 }, 'query.limit: must be at most 100'],
    [{ page: 0 }, 'query.page: must be at least 1'],
    [{ limit: '1e1' }, 'query.limit: must be a whole number'],
  ])('says what is wrong with %j: the range, or that it is not a whole number', async (query, message) => {
    const err = await failure(search(query as LogQueryInput))
    expect(err.status).toBe(400)
    expect(err.message).toContain(message)
  })

  it('filters dates to the microsecond the records are stored with', async () => {
    const own = await setupProject(collector)
    const at = (stamp: string, n: number) => Array.from({ length: n }, (_, i) => ({ prompt: `µs ${stamp} ${i}`, model: 'pager', latency: 1, timestamp: stamp }))
    const res = await collector.client.post<BatchResult>('/v1/llm/requests/batch', { records: [...at('2026-12-01T10:00:00Z', 2), ...at('2026-12-01T10:00:00.000001Z', 3)] }, { token: own.key.key })
    expect(res.accepted).toBe(5)
    const total = async (startDate: string, endDate: string) =>
      (await collector.client.get<Page<LogResult>>(`/v1/projects/${own.project.id}/logs`, { query: { startDate, endDate }, token: own.key.key })).total
    expect(await total('2026-12-01T10:00:00.0009Z', '2026-12-01T11:00:00Z')).toBe(0)
    expect(await total('2026-12-01T10:00:00.000001Z', '2026-12-01T11:00:00Z')).toBe(3)
    expect(await total('2026-12-01T09:00:00Z', '2026-12-01T10:00:00.0005Z')).toBe(5)
    // a range of one microsecond is a range: before its end, not refused
    expect(await total('2026-12-01T10:00:00Z', '2026-12-01T10:00:00.000001Z')).toBe(2)
    // the same instant written with an offset is not before itself
    const same = await failure(collector.client.get(`/v1/projects/${own.project.id}/logs`, { query: { startDate: '2026-12-01T10:00:00.000001Z', endDate: '2026-12-01T11:00:00.000001+01:00' }, token: own.key.key }))
    expect(same.message).toContain('startDate must be before endDate')
  })

  it('follows arrivals by createdAt, whatever the records\' timestamps', async () => {
    // a project of its own: the other tests count this one's records
    const own = await setupProject(collector)
    const follow = (query: LogQueryInput) =>
      collector.client.get<Page<LogResult>>(`/v1/projects/${own.project.id}/logs`, { query: query as Record<string, string>, token: own.key.key })
    const store = async (prompts: string[], timestamp: string) => {
      const res = await collector.client.post<BatchResult>('/v1/llm/requests/batch', { records: prompts.map((prompt) => ({ prompt, model: 'gpt-4o', latency: 5, timestamp })) }, { token: own.key.key })
      expect(res.accepted).toBe(prompts.length)
    }
    // first a batch of calls made now, then one an SDK shipped late: calls made a day ago
    await store(['live one', 'live two'], new Date().toISOString())
    await new Promise((r) => setTimeout(r, 20))
    await store(['late one'], new Date(Date.now() - 86_400_000).toISOString())
    const byArrival = await follow({ sortBy: 'createdAt', sortOrder: 'asc' })
    expect(byArrival.items.map((i) => i.prompt)).toEqual([expect.stringMatching(/^live /), expect.stringMatching(/^live /), 'late one'])
    // one batch, one transaction: its rows share their createdAt
    const [a, b, late] = byArrival.items
    expect(a!.createdAt).toBe(b!.createdAt)
    expect(Date.parse(late!.createdAt)).toBeGreaterThan(Date.parse(a!.createdAt))
    // by timestamp the late record is the oldest; by arrival it is the newest
    expect((await follow({})).items.at(-1)!.prompt).toBe('late one')
    expect((await follow({ sortBy: 'createdAt' })).items[0]!.prompt).toBe('late one')
    const since = await follow({ createdFrom: late!.createdAt })
    expect(since).toMatchObject({ total: 1, items: [{ prompt: 'late one' }] })
    expect((await follow({ createdFrom: a!.createdAt })).total).toBe(3)
    expect((await follow({ createdFrom: new Date(Date.parse(late!.createdAt) + 1).toISOString() })).total).toBe(0)
    const detail = await collector.client.get<LogDetail>(`/v1/projects/${own.project.id}/logs/${late!.id}`, { token: own.key.key })
    expect(detail.createdAt).toBe(late!.createdAt)
  })

  it('shows one record with every field, and 404s for unknown or malformed ids', async () => {
    const r = records[3]!
    const detail = await collector.client.get<LogDetail>(`/v1/projects/${projectId}/logs/${r.id}`, { token: owner.accessToken })
    expect(detail).toMatchObject({ id: r.id, prompt: r.prompt, model: r.model, latency: r.latency, projectId, timestamp: r.timestamp })
    expect((await failure(collector.client.get(`/v1/projects/${projectId}/logs/${randomUUID()}`, { token: owner.accessToken }))).status).toBe(404)
    expect((await failure(collector.client.get(`/v1/projects/${projectId}/logs/nope`, { token: owner.accessToken }))).status).toBe(404)
  })

  it("answers with the project's own API key, and refuses other users and other projects' keys", async () => {
    expect((await search({ limit: 1 }, key)).total).toBeGreaterThanOrEqual(40)
    const stranger = await signUp(collector)
    expect((await failure(search({}, stranger.accessToken))).status).toBe(403)
    const other = await setupProject(collector, stranger)
    expect((await failure(search({}, other.key.key))).status).toBe(403)
    expect((await failure(collector.client.get(`/v1/projects/${projectId}/logs/${records[0]!.id}`, { token: other.key.key }))).status).toBe(403)
  })

  it('caps the total at 10,000', async () => {
    const batch = Array.from({ length: 1000 }, (_, i) => ({ prompt: `bulk ${i}`, model: 'gpt-4o-mini', latency: 1 }))
    for (let i = 0; i < 10; i++) await collector.client.post('/v1/llm/requests/batch', { records: batch }, { token: key })
    const page = await search({ limit: 1 })
    expect(page.total).toBe(10_000)
    expect(page.totalCapped).toBe(true)
    const narrow = await search({ search: 'bulk 99', limit: 1 })
    expect(narrow.totalCapped).toBe(false)
    expect(narrow.total).toBe(10 * 11) // "bulk 99" and "bulk 990" … "bulk 999", in each of 10 batches
    // exactly 10,000 matches is still an exact total; one more and it is capped
    expect(await search({ search: 'BULK', limit: 1 })).toMatchObject({ total: 10_000, totalCapped: false })
    await collector.client.post('/v1/llm/requests', { prompt: 'bulk newest', model: 'gpt-4o-mini', latency: 1, timestamp: new Date(Date.now() + 60_000).toISOString() }, { token: key })
    // a common term (more candidates than the cap) is answered by walking newest-first
    const common = await search({ search: 'BULK', limit: 3 })
    expect(common).toMatchObject({ total: 10_000, totalCapped: true })
    expect(common.items[0]!.prompt).toBe('bulk newest')
    const page2 = await search({ search: 'BULK', limit: 3, page: 2 })
    expect(page2.items).toHaveLength(3)
    expect(ids(page2).some((id) => ids(common).includes(id))).toBe(false)
    expect(Date.parse(page2.items[0]!.timestamp)).toBeLessThanOrEqual(Date.parse(common.items[2]!.timestamp))
    // … and with another filter the capped count is taken for real
    const filtered = await search({ search: 'bulk', model: 'gpt-4o', limit: 1 })
    expect(filtered).toMatchObject({ total: 0, totalCapped: false, items: [] })
  })
})

describe.runIf(onRealPostgres())('the search indexer and a transaction still open', () => {
  it('never moves its watermark past the start of a collector transaction still open: rows it commits late are found', async () => {
    const c = await startTestCollector({ env: { SEARCH_INDEX_LAG_MS: '0' } })
    try {
      const { project, user } = await setupProject(c)
      // a slow ingest: its rows carry the transaction's start time and show only at its commit
      const conn = await c.sql.reserve()
      const id = randomUUID()
      try {
        await conn`begin`
        await conn`
          insert into llm_requests (project_id, id, prompt, response, model, latency, tokens, status, risk_score, risk_reasons, "timestamp")
          values (${project.id}, ${id}, 'a slow wombat question', 'ok', 'gpt-4o', 1, 0, 'success', 0, '[]', now())`
        await new Promise((r) => setTimeout(r, 50))
        await c.app.searchIndexer.runOnce(0) // no lag at all: only the open transaction holds it back
        await conn`commit`
      } finally {
        conn.release()
      }
      await c.app.searchIndexer.runOnce(0)
      const page = await c.client.get<Page<LogResult>>(`/v1/projects/${project.id}/logs`, { token: user.accessToken, query: { search: 'wombat' } })
      expect(page.items.map((r) => r.id)).toEqual([id])
    } finally {
      await c.close()
    }
  })
})
