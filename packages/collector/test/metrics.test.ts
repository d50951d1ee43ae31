import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { computeCost, type LlmRecordInput, type ProjectMetrics } from '@llmguard/shared'
import { startTestCollector, type TestCollector } from './helpers/collector.js'
import { failure, setupProject, type TestUser } from './helpers/accounts.js'
import { bucketValue, latencyBucket, percentile } from '../src/metrics/percentiles.js'

let collector: TestCollector
let owner: TestUser
let projectId: string
let key: string

const DAY = 86_400_000
const MODELS = ['gpt-4o', 'gpt-4o-mini', 'gpt-4', 'o3-mini', 'house-model-unpriced']

/** A small deterministic PRNG, so a failure can be reproduced from the seed. */
function rng(seed: number) {
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff
    return seed / 0x7fffffff
  }
}

function randomRecords(n: number, seed: number, now: number): LlmRecordInput[] {
  const r = rng(seed)
  return Array.from({ length: n }, () => {
    const split = r() < 0.6
    const promptTokens = Math.floor(r() * 3000)
    const completionTokens = Math.floor(r() * 1000)
    return {
      prompt: 'p',
      model: MODELS[Math.floor(r() * MODELS.length)]!,
      // a long tail, as real latencies have
      latency: Math.floor(r() < 0.9 ? r() * 2000 : r() * 60_000),
      status: r() < 0.12 ? 'error' : 'success',
      ...(split ? { promptTokens, completionTokens, cachedTokens: Math.floor(promptTokens * r() * 0.5) } : { tokens: promptTokens + completionTokens }),
      // spread over the last 12 days, and a few older ones that a short window must leave out
      timestamp: new Date(now - Math.floor(r() * 14 * DAY)).toISOString(),
    } satisfies LlmRecordInput
  })
}

function bruteForce(records: LlmRecordInput[], days: number, now: number) {
  const todayStart = Math.floor(now / DAY) * DAY
  const start = todayStart - (days - 1) * DAY
  const inWindow = records.filter((x) => Date.parse(x.timestamp!) >= start && Date.parse(x.timestamp!) < todayStart + DAY)
  const costs = inWindow.map((x) => computeCost({ ...x, tokens: x.tokens ?? (x.promptTokens ?? 0) + (x.completionTokens ?? 0) }))
  const latencies = inWindow.map((x) => x.latency).sort((a, b) => a - b)
  const exactPercentile = (p: number) => latencies[Math.max(1, Math.ceil(p * latencies.length)) - 1]!
  const breakdown: Record<string, number> = {}
  for (const x of inWindow) breakdown[x.model] = (breakdown[x.model] ?? 0) + 1
  return {
    totalRequests: inWindow.length,
    errorCount: inWindow.filter((x) => x.status === 'error').length,
    latencySum: inWindow.reduce((s, x) => s + x.latency, 0),
    totalTokens: inWindow.reduce((s, x) => s + (x.tokens ?? (x.promptTokens ?? 0) + (x.completionTokens ?? 0)), 0),
    cost: costs.reduce<number>((s, c) => s + (c ?? 0), 0),
    unpriced: costs.filter((c) => c === null).length,
    breakdown,
    p: (q: number) => exactPercentile(q),
    perDay: (date: string) => inWindow.filter((x) => x.timestamp!.slice(0, 10) === date).length,
  }
}

const records: LlmRecordInput[] = []
const NOW = Date.now()

beforeAll(async () => {
  collector = await startTestCollector()
  const setup = await setupProject(collector)
  owner = setup.user
  projectId = setup.project.id
  key = setup.key.key
  records.push(...randomRecords(1500, 20261125, NOW))
  for (let i = 0; i < records.length; i += 500) {
    await collector.client.post('/v1/llm/requests/batch', { records: records.slice(i, i + 500) }, { token: key })
  }
})
afterAll(() => collector.close())

const metrics = (days?: number, token = owner.accessToken) =>
  collector.client.get<ProjectMetrics>(`/v1/projects/${projectId}/metrics`, { query: { days }, token })

describe('GET /v1/projects/:id/metrics', () => {
  it.each([1, 7, 30])('equals a brute-force computation over the same records (days=%i)', async (days) => {
    const m = await metrics(days)
    const want = bruteForce(records, days, NOW)
    expect(want.totalRequests).toBeGreaterThan(0)
    expect(m.totalRequests).toBe(want.totalRequests)
    expect(m.errorCount).toBe(want.errorCount)
    expect(m.errorRate).toBeCloseTo(want.errorCount / want.totalRequests, 12)
    expect(m.averageLatency).toBeCloseTo(want.latencySum / want.totalRequests, 9)
    expect(m.totalTokens).toBe(want.totalTokens)
    expect(m.estimatedCost).toBeCloseTo(want.cost, 8)
    expect(m.unpricedRequests).toBe(want.unpriced)
    expect(m.modelBreakdown).toEqual(want.breakdown)
    expect(m.dailySummary).toHaveLength(days)
    expect(m.dailySummary.reduce((s, d) => s + d.requests, 0)).toBe(want.totalRequests)
    for (const d of m.dailySummary) expect(d.requests).toBe(want.perDay(d.date))
    for (const [q, got] of [[0.5, m.p50Latency], [0.95, m.p95Latency], [0.99, m.p99Latency]] as const) {
      const exact = want.p(q)
      // documented error: within 2.5 % of (latency + 1 ms)
      expect(Math.abs(got! + 1 - (exact + 1)) / (exact + 1)).toBeLessThanOrEqual(0.025)
    }
  })

  it('zero-fills the days, oldest first, today last, and answers an empty project with zeros', async () => {
    const m = await metrics(30)
    const dates = m.dailySummary.map((d) => d.date)
    expect(dates.at(-1)).toBe(new Date().toISOString().slice(0, 10))
    expect([...dates].sort()).toEqual(dates)
    const empty = await setupProject(collector, owner)
    const none = await collector.client.get<ProjectMetrics>(`/v1/projects/${empty.project.id}/metrics`, { token: owner.accessToken })
    expect(none).toMatchObject({ totalRequests: 0, errorRate: 0, averageLatency: 0, estimatedCost: 0, p50Latency: null, unpricedRequests: 0 })
    expect(none.dailySummary).toHaveLength(30)
    expect(none.dailySummary.every((d) => d.requests === 0 && d.cost === 0)).toBe(true)
  })

  it('counts models named like Object methods as models', async () => {
    const other = await setupProject(collector, owner)
    const names = ['constructor', 'toString', 'hasOwnProperty', 'gpt-4o']
    await collector.client.post('/v1/llm/requests/batch', { records: names.map((model) => ({ prompt: 'p', model, latency: 1 })) }, { token: other.key.key })
    const m = await collector.client.get<ProjectMetrics>(`/v1/projects/${other.project.id}/metrics`, { token: owner.accessToken })
    expect(m.modelBreakdown).toEqual({ constructor: 1, toString: 1, hasOwnProperty: 1, 'gpt-4o': 1 })
  })

  it('answers the project API key, and rejects bad days with a 400', async () => {
    expect((await metrics(7, key)).totalRequests).toBe(bruteForce(records, 7, NOW).totalRequests)
    for (const days of [0, 366, 1.5, 'x', '', ' ', '0x10', '7e0']) {
      const err = await failure(collector.client.get(`/v1/projects/${projectId}/metrics`, { query: { days }, token: owner.accessToken }))
      expect(err.status).toBe(400)
    }
  })

  it('reads the rollups, never the raw rows', async () => {
    await collector.sql`delete from llm_requests where project_id = ${projectId}`
    expect((await metrics(30)).totalRequests).toBe(bruteForce(records, 30, NOW).totalRequests)
  })
})

describe('latency buckets', () => {
  it('keep every latency within 2.5 % of its bucket value', () => {
    for (const v of [0, 1, 2, 5, 17, 100, 999, 5000, 123_456, 86_400_000]) {
      const b = latencyBucket(v)
      expect(Math.abs(bucketValue(b) + 1 - (v + 1)) / (v + 1)).toBeLessThanOrEqual(0.025)
    }
    expect(percentile([], 0.5)).toBeNull()
    expect(percentile([{ bucket: latencyBucket(100), n: 1 }], 0.99)).toBe(bucketValue(latencyBucket(100)))
  })
})
