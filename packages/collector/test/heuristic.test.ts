import { describe, expect, it } from 'vitest'
import type { Incident, IncidentType } from '@llmguard/shared'
import type { Aggregate, Evidence } from '../src/incidents/evidence.js'
import { errorForRca, heuristicRca, rcaPrompt, RCA_PROMPT_MAX_CHARS } from '../src/incidents/heuristic.js'

const SINCE = '2026-12-06T12:00:00.000Z'

const incident = (type: IncidentType, metadata: Record<string, unknown> = {}): Incident => ({
  id: '00000000-0000-4000-8000-000000000001',
  projectId: '00000000-0000-4000-8000-000000000002',
  type,
  key: 'gpt-4o',
  status: 'open',
  severity: 'high',
  title: 't',
  occurrences: 1,
  firstSeenAt: SINCE,
  lastSeenAt: SINCE,
  acknowledgedAt: null,
  resolvedAt: null,
  metadata,
  rca: null,
  rcaPending: true,
})

const aggregate = (over: Partial<Aggregate> = {}): Aggregate & { from: string; to: string } => ({
  requests: 0,
  errors: 0,
  errorRate: 0,
  avgLatency: 0,
  avgCostPerRequest: null,
  avgTokens: 0,
  models: {},
  from: SINCE,
  to: SINCE,
  ...over,
})

const evidence = (window: Partial<Aggregate>, baseline: Partial<Aggregate>): Evidence => ({ related: [], window: aggregate(window), baseline: aggregate(baseline) })

const rootCause = (type: IncidentType, window: Partial<Aggregate>, baseline: Partial<Aggregate>) =>
  heuristicRca(incident(type, { thresholdMs: 5000 }), evidence(window, baseline), new Date(SINCE)).rootCause

describe('heuristic root cause: the comparison with the previous 24 hours', () => {
  it('gives a ratio when the baseline has one', () => {
    expect(rootCause('latency', { requests: 4, avgLatency: 4000 }, { requests: 100, avgLatency: 800 })).toContain("5.0× the previous 24 hours' 800 ms")
    expect(rootCause('error_rate', { requests: 10, errors: 5, errorRate: 0.5 }, { requests: 100, errors: 2, errorRate: 0.02 })).toContain("25.0× the previous 24 hours' 2.0 %")
    expect(rootCause('cost_spike', { requests: 10, avgCostPerRequest: 0.02 }, { requests: 100, avgCostPerRequest: 0.005 })).toContain("4.0× the previous 24 hours' $0.00500")
  })

  it('says "rose to" only when the average did rise', () => {
    expect(rootCause('latency', { requests: 4, avgLatency: 4000 }, { requests: 100, avgLatency: 800 })).toContain('Average latency on gpt-4o rose to 4,000 ms')
    // one slow request fires the latency rule with the average below the day before's
    const calmer = rootCause('latency', { requests: 40, avgLatency: 3861 }, { requests: 100, avgLatency: 4159 })
    expect(calmer).toContain('Average latency on gpt-4o was 3,861 ms')
    expect(calmer).not.toContain('rose')
    expect(rootCause('error_rate', { requests: 10, errors: 1, errorRate: 0.1 }, { requests: 100, errors: 20, errorRate: 0.2 })).toContain('Error rate on gpt-4o was 10.0 %')
  })

  it('says there was nothing to compare with when the previous 24 hours had no requests', () => {
    for (const type of ['latency', 'error_rate', 'cost_spike'] as const) {
      const text = rootCause(type, { requests: 2, errors: 1, errorRate: 0.5, avgLatency: 22550, avgCostPerRequest: 0.01 }, {})
      expect(text).toContain('with no requests in the previous 24 hours to compare with')
      expect(text).not.toMatch(/from zero|previous 24 hours' /)
    }
  })

  it('names a zero or unpriced baseline plainly', () => {
    expect(rootCause('error_rate', { requests: 10, errors: 5, errorRate: 0.5 }, { requests: 100 })).toContain('against 0.0 % over the previous 24 hours')
    expect(rootCause('cost_spike', { requests: 10, avgCostPerRequest: 0.02 }, { requests: 100, avgCostPerRequest: null })).toContain(
      'with no priced requests in the previous 24 hours to compare with',
    )
  })
})

describe('heuristic root cause of a Datadog alert: the project LLM traffic beside it', () => {
  const datadog = (window: Partial<Aggregate>, baseline: Partial<Aggregate>) =>
    heuristicRca(incident('datadog', { priority: 'P2', transition: 'Triggered' }), evidence(window, baseline), new Date(SINCE))

  it('says the LLM calls stopped when the window has none and the day before had some', () => {
    const rca = datadog({}, { requests: 480, errors: 5, errorRate: 0.0104, avgLatency: 900 })
    expect(rca.rootCause).toContain('no LLM requests since')
    expect(rca.rootCause).toContain('480 in the previous 24 hours')
    expect(rca.rootCause).not.toMatch(/error rate 0\.0 %|0 ms/)
    expect(rca.recommendedFix).toMatch(/^LLM traffic stopped/)
    expect(rca.recommendedFix).not.toContain('looks normal')
  })

  it('says there is no LLM traffic to compare when neither span has any', () => {
    const rca = datadog({}, {})
    expect(rca.rootCause).toContain('no LLM requests in the window or the 24 hours before')
    expect(rca.rootCause).not.toMatch(/error rate|average latency/)
    expect(rca.recommendedFix).not.toContain('looks normal')
  })

  it('leaves out the comparison when only the day before is empty', () => {
    const rca = datadog({ requests: 20, errors: 1, errorRate: 0.05, avgLatency: 700 }, {})
    expect(rca.rootCause).toContain('20 requests, error rate 5.0 %, average latency 700 ms')
    expect(rca.rootCause).toContain('no requests in the previous 24 hours to compare with')
    expect(rca.rootCause).not.toMatch(/before: 0/)
  })

  it('compares with the day before when both have traffic', () => {
    const rca = datadog({ requests: 20, errors: 10, errorRate: 0.5, avgLatency: 700 }, { requests: 400, errors: 4, errorRate: 0.01, avgLatency: 650 })
    expect(rca.rootCause).toContain('20 requests, error rate 50.0 % (24 h before: 1.0 %), average latency 700 ms (before: 650 ms)')
    expect(rca.recommendedFix).toMatch(/^LLM errors rose with the alert/)
  })
})

describe('rcaPrompt', () => {
  const related = (i: number) => ({
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    timestamp: new Date(Date.parse(SINCE) - i * 1000).toISOString(),
    model: 'gpt-4o',
    latency: 100 + i,
    status: 'error' as const,
    riskScore: 25,
    riskReasons: [],
    tokens: 10,
    cost: null,
    userId: null,
    error: { type: 'server_error', message: `failure number ${i} ${'z'.repeat(500)}`, status: 500 },
    promptPreview: 'never sent',
  })

  it('stays within its bound by dropping the oldest related requests, keeping the newest', () => {
    // more than fit (evidence holds 20; the bound holds whatever it is given)
    const ev: Evidence = { ...evidence({ requests: 60 }, {}), related: Array.from({ length: 60 }, (_, i) => related(i)) }
    const { user } = rcaPrompt(incident('datadog', { body: 'b'.repeat(10_000) }), ev)
    expect(user.length).toBeLessThanOrEqual(RCA_PROMPT_MAX_CHARS)
    expect(user.length).toBeGreaterThan(RCA_PROMPT_MAX_CHARS - 1_000) // dropped one at a time
    const sent = JSON.parse(user) as { relatedRequests: { latency: number; error: { message: string } }[] }
    expect(sent.relatedRequests.length).toBeGreaterThan(0)
    expect(sent.relatedRequests.length).toBeLessThan(60)
    expect(sent.relatedRequests.map((r) => r.latency)).toEqual(sent.relatedRequests.map((_, i) => 100 + i))
    expect(sent.relatedRequests.every((r) => r.error.message.length <= 201)).toBe(true)
    expect(user).not.toContain('never sent')
  })

  it('stays within its bound with a Datadog alert at its field limits and an hour of many models', () => {
    const models = Object.fromEntries(Array.from({ length: 2_000 }, (_, i) => [`model-${i}-${'m'.repeat(150)}`, i]))
    const ev: Evidence = { ...evidence({ requests: 20, models }, { models }), related: Array.from({ length: 20 }, (_, i) => related(i)) }
    const alert = { ...incident('datadog', { body: '"quoted" '.repeat(450), tags: Array.from({ length: 500 }, (_, i) => `tag-${i}:"v"`), link: 'l'.repeat(2_000) }), title: 't'.repeat(1_000) }
    const { user } = rcaPrompt(alert, ev)
    expect(user.length).toBeLessThanOrEqual(RCA_PROMPT_MAX_CHARS)
    const sent = JSON.parse(user) as { relatedRequests: unknown[]; window: { models: Record<string, number> } }
    expect(sent.relatedRequests.length).toBeGreaterThan(0)
    // the busiest models kept (10 of them, names cut, once the 20 did not fit beside the requests)
    expect(Object.keys(sent.window.models)).toHaveLength(10)
    expect(Object.entries(sent.window.models)[0]).toEqual([Object.keys(models).at(-1)!.slice(0, 50), 1_999])
  })

  it('stays within its bound when model names are all characters JSON escapes', () => {
    const models = (c: string) => Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`${c.repeat(199)}${i}`, i]))
    const ev: Evidence = { ...evidence({ requests: 20, models: models('"') }, { models: models('\u0001') }), related: [] }
    const { user } = rcaPrompt({ ...incident('latency'), key: '"'.repeat(200), title: '\u0002'.repeat(1_000) }, ev)
    expect(user.length).toBeLessThanOrEqual(RCA_PROMPT_MAX_CHARS)
    expect(JSON.parse(user).window.requests).toBe(20)
    // cutting the model names comes before dropping the requests and the metadata
    const withRelated: Evidence = { ...ev, related: Array.from({ length: 10 }, (_, i) => related(i)) }
    const kept = JSON.parse(rcaPrompt(incident('latency', { thresholdMs: 5000 }), withRelated).user) as { relatedRequests: unknown[]; incident: { metadata: Record<string, unknown> } }
    expect(kept.relatedRequests).toHaveLength(10)
    expect(kept.incident.metadata).toEqual({ thresholdMs: 5000 })
  })

  it('withholds a card number or an address that the cut at 200 characters would split', () => {
    expect(errorForRca({ type: 'x', message: `${'x'.repeat(185)} 4111 1111 1111 1111 declined` })!.message).toBe('[withheld: holds payment card number]')
    expect(errorForRca({ type: 'x', message: `${'x'.repeat(190)} alice.smith@example.com rejected` })!.message).toBe('[withheld: holds email address]')
  })

  it('withholds an error message that holds a key or an address, and cuts the rest short', () => {
    expect(errorForRca({ type: 'auth', message: 'bad key sk-proj-abcdefghij0123456789xyz for you', status: 401 })).toEqual({ type: 'auth', message: '[withheld: holds OpenAI API key]', status: 401 })
    expect(errorForRca({ type: 'x', message: 'a'.repeat(300) })!.message).toBe(`${'a'.repeat(200)}…`)
    expect(errorForRca({ type: 'x', message: 'upstream timeout' })).toEqual({ type: 'x', message: 'upstream timeout' })
    expect(errorForRca(null)).toBeNull()
  })
})
