import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { BatchResult, Incident, LlmRecordInput, LogResult, Page, Policy, Project, Remediation } from '@llmguard/shared'
import type { IngestContext } from '../src/ingest/pipeline.js'
import { POLICY_GRACE_MS } from '../src/remediation/violations.js'
import type { Signal } from '../src/incidents/store.js'
import { ownDatabase, onRealPostgres, startTestCollector, type TestCollector } from './helpers/collector.js'
import { count, createKey, createProject, failure, signUp, type TestUser } from './helpers/accounts.js'

let collector: TestCollector
let owner: TestUser

beforeAll(async () => {
  collector = await startTestCollector()
  owner = await signUp(collector)
})
afterAll(() => collector.close())

const as = (user: TestUser) => ({ token: user.accessToken })
const MINUTE = 60_000
const T0 = new Date('2026-03-10T10:00:00Z')
const rec = (over: Partial<LlmRecordInput> = {}): LlmRecordInput => ({ prompt: 'hello', response: 'hi', model: 'gpt-4o', latency: 100, ...over })

const switchRule = { latency: { action: 'switch_model', parameters: { to: 'gpt-4o-mini' }, durationMinutes: 30 } }

async function project(settings?: Record<string, unknown>): Promise<{ project: Project; key: string }> {
  const p = await createProject(collector, owner, `p-${randomUUID().slice(0, 8)}`)
  const key = await createKey(collector, owner, p.id)
  if (settings) await collector.client.patch(`/v1/projects/${p.id}/settings`, settings, as(owner))
  return { project: p, key: key.key }
}

/** A slow call through the real pipeline: opens (or counts on) the project's latency incident. */
async function slowCall(c: TestCollector, p: Project, model = 'gpt-4o'): Promise<Incident> {
  const ctx: IngestContext = { projectId: p.id, ownerId: owner.id, sensitiveKeywords: [], priceOverrides: {}, receivedAt: new Date(), requestId: randomUUID() }
  await c.app.ingest.ingest([rec({ latency: 9_000, model })], ctx)
  const page = await c.client.get<Page<Incident>>(`/v1/projects/${p.id}/incidents`, { ...as(owner), query: { type: 'latency' } })
  return page.items.find((i) => i.key === model)!
}

const policy = async (key: string) => (await collector.client.send<Policy>('GET', '/v1/llm/policy', { token: key })).data
const remediationsOf = async (incident: Incident) =>
  (await collector.client.get<Page<Remediation>>(`/v1/incidents/${incident.id}/remediations`, as(owner))).items

describe('automatic remediation', () => {
  it('applies the rule of the incident type when such an incident opens (once), and the job reverts it when the duration ends', async () => {
    collector.app.remediation.service.clock.now = () => T0
    try {
      const { project: p, key } = await project({ autoRemediation: switchRule })
      const v0 = (await policy(key)).version
      const incident = await slowCall(collector, p)
      const [auto] = await remediationsOf(incident)
      expect(auto).toMatchObject({
        actionType: 'switch_model',
        parameters: { to: 'gpt-4o-mini' },
        automatic: true,
        state: 'active',
        appliedBy: { kind: 'system' },
        appliedAt: T0.toISOString(),
        expiresAt: new Date(T0.getTime() + 30 * MINUTE).toISOString(),
        before: { modelOverrides: { '*': null } },
        after: { modelOverrides: { '*': 'gpt-4o-mini' } },
      })
      expect(auto!.audit).toEqual([{ event: 'applied', actor: { kind: 'system' }, at: T0.toISOString(), before: auto!.before, after: auto!.after }])
      expect(await policy(key)).toMatchObject({ version: v0 + 1, modelOverrides: { '*': 'gpt-4o-mini' } })

      // a repeat of the open incident is no new incident: no second action
      await slowCall(collector, p)
      expect(await remediationsOf(incident)).toHaveLength(1)

      expect(await collector.app.remediation.runExpiryJob(new Date(T0.getTime() + 30 * MINUTE - 1))).toEqual({ ran: true, expired: 0 })
      expect((await policy(key)).modelOverrides).toEqual({ '*': 'gpt-4o-mini' })
      expect(await collector.app.remediation.runExpiryJob(new Date(T0.getTime() + 30 * MINUTE))).toEqual({ ran: true, expired: 1 })
      const [expired] = await remediationsOf(incident)
      expect(expired).toMatchObject({ state: 'expired', endedAt: new Date(T0.getTime() + 30 * MINUTE).toISOString() })
      expect(expired!.audit.map((a) => [a.event, a.actor.kind])).toEqual([['applied', 'system'], ['expired', 'system']])
      expect(expired!.audit[1]).toMatchObject({ before: { modelOverrides: { '*': 'gpt-4o-mini' } }, after: { modelOverrides: { '*': null } } })
      expect(await policy(key)).toMatchObject({ version: v0 + 2, modelOverrides: {} })
      // nothing left to do; an expired action cannot be rolled back
      expect(await collector.app.remediation.runExpiryJob(new Date(T0.getTime() + 60 * MINUTE))).toEqual({ ran: true, expired: 0 })
      expect((await failure(collector.client.post(`/v1/remediations/${expired!.id}/rollback`, undefined, as(owner)))).code).toBe('CONFLICT')
    } finally {
      collector.app.remediation.service.clock.now = () => new Date()
    }
  })

  it('a user may roll an automatic action back early; the job then leaves it alone', async () => {
    const { project: p, key } = await project({ autoRemediation: { latency: { action: 'disable_endpoint', parameters: { endpoint: 'chat.completions' }, durationMinutes: 1 } } })
    const incident = await slowCall(collector, p)
    const [auto] = await remediationsOf(incident)
    expect((await policy(key)).disabledEndpoints).toEqual(['chat.completions'])
    await collector.client.post(`/v1/remediations/${auto!.id}/rollback`, undefined, as(owner))
    expect((await policy(key)).disabledEndpoints).toEqual([])
    await collector.app.remediation.runExpiryJob(new Date(Date.now() + 2 * MINUTE))
    const [after] = await remediationsOf(incident)
    expect(after!.state).toBe('rolled_back')
    expect(after!.audit.map((a) => a.event)).toEqual(['applied', 'rolled_back'])
  })

  it('expires even under a later action on the same field, which keeps its value', async () => {
    const { project: p, key } = await project({ autoRemediation: { latency: { action: 'change_system_prompt', parameters: { systemPrompt: 'Auto.' }, durationMinutes: 5 } } })
    const incident = await slowCall(collector, p)
    await collector.client.post(`/v1/incidents/${incident.id}/remediations`, { actionType: 'change_system_prompt', parameters: { systemPrompt: 'Manual.' } }, as(owner))
    const v = (await policy(key)).version
    await collector.app.remediation.runExpiryJob(new Date(Date.now() + 6 * MINUTE))
    const items = await remediationsOf(incident)
    expect(items.map((r) => r.state)).toEqual(['active', 'expired'])
    expect(items[1]!.audit[1]).toMatchObject({ event: 'expired', before: { systemPrompt: 'Manual.' }, after: { systemPrompt: 'Manual.' } })
    expect(await policy(key)).toMatchObject({ version: v, systemPrompt: 'Manual.' })
  })

  it('types without a rule do nothing', async () => {
    const { project: p } = await project({ autoRemediation: { error_rate: switchRule.latency } })
    const incident = await slowCall(collector, p)
    expect(await remediationsOf(incident)).toEqual([])
  })

  it('rules are validated like the actions: bad ones → 400 and the settings are unchanged', async () => {
    const { project: p } = await project({ autoRemediation: switchRule })
    const bad = [
      { nope: switchRule.latency },
      { latency: { action: 'reboot', parameters: {}, durationMinutes: 5 } },
      { latency: { action: 'switch_model', parameters: {}, durationMinutes: 5 } },
      { latency: { action: 'increase_safety_threshold', parameters: { threshold: 500 }, durationMinutes: 5 } },
      { latency: { action: 'switch_model', parameters: { to: 'x' }, durationMinutes: 0 } },
      { latency: { action: 'switch_model', parameters: { to: 'x' }, durationMinutes: 43_201 } },
      { latency: { action: 'switch_model', parameters: { to: 'x' } } },
      { latency: { action: 'switch_model', parameters: { to: 'x' }, durationMinutes: 5, extra: 1 } },
    ]
    for (const autoRemediation of bad) {
      const err = await failure(collector.client.patch(`/v1/projects/${p.id}/settings`, { autoRemediation }, as(owner)))
      expect(err.status).toBe(400)
      expect(err.code).toBe('VALIDATION_ERROR')
    }
    const settings = await collector.client.get<{ autoRemediation: unknown }>(`/v1/projects/${p.id}/settings`, as(owner))
    expect(settings.autoRemediation).toEqual(switchRule)
  })
})

/**
 * Opens a latency incident and commits it without running the opened hooks: what a collector
 * that crashed (or was stopped) right after the commit leaves behind.
 */
async function openWithoutHooks(c: TestCollector, projectId: string, model = 'gpt-4o'): Promise<Incident> {
  const signal: Signal = { projectId, type: 'latency', key: model, severity: 'high', title: `slow ${model}`, count: 1, at: new Date(), metadata: {} }
  const [raised] = await c.app.incidents.service.raise(c.sql, [signal])
  expect(raised!.opened).toBe(true)
  return raised!.incident
}

describe('automatic remediation survives a crash between the incident and its action', () => {
  it('an incident committed whose action was never applied gets it when the collector starts again, once, with the same audit trail', async () => {
    // a database of its own, shared by the two lives of one collector
    const own = await ownDatabase()
    const where = own.where
    try {
      const first = await startTestCollector(where)
      const user = await signUp(first)
      const p = await createProject(first, user, 'crash')
      const key = (await createKey(first, user, p.id)).key
      await first.client.patch(`/v1/projects/${p.id}/settings`, { autoRemediation: switchRule }, { token: user.accessToken })
      const incident = await openWithoutHooks(first, p.id)
      await first.close()

      const second = await startTestCollector(where)
      try {
        const list = async () => (await second.client.get<Page<Remediation>>(`/v1/incidents/${incident.id}/remediations`, { token: user.accessToken })).items
        // applied by the start-up sweep, without any new traffic
        const [auto] = await vi.waitFor(async () => {
          const items = await list()
          expect(items).toHaveLength(1)
          return items
        }, { timeout: 10_000, interval: 50 })
        expect(auto).toMatchObject({ actionType: 'switch_model', automatic: true, state: 'active', appliedBy: { kind: 'system' }, after: { modelOverrides: { '*': 'gpt-4o-mini' } } })
        expect(Date.parse(auto!.expiresAt!) - Date.parse(auto!.appliedAt)).toBe(30 * MINUTE)
        expect(auto!.audit).toEqual([{ event: 'applied', actor: { kind: 'system' }, at: auto!.appliedAt, before: auto!.before, after: auto!.after }])
        expect((await second.client.send<Policy>('GET', '/v1/llm/policy', { token: key })).data.modelOverrides).toEqual({ '*': 'gpt-4o-mini' })
        // later sweeps and a late hook find nothing left to do
        expect(await second.app.remediation.runDueJob()).toBe(0)
        expect(await second.app.remediation.service.autoApply(incident)).toBeUndefined()
        expect(await list()).toHaveLength(1)
        expect(await count(second, 'remediation_audit')).toBe(1)
      } finally {
        await second.close()
      }
    } finally {
      await own.remove()
    }
  })

  it('the minute sweep applies what is due; an incident resolved before then, or whose rule was dropped, gets nothing', async () => {
    const { project: p, key } = await project({ autoRemediation: { ...switchRule, error_rate: switchRule.latency } })
    const pending = await openWithoutHooks(collector, p.id, 'gpt-4.1')
    const resolved = await openWithoutHooks(collector, p.id, 'o3')
    await collector.client.patch(`/v1/incidents/${resolved.id}`, { status: 'resolved' }, as(owner))
    const { project: other } = await project({ autoRemediation: switchRule })
    const dropped = await openWithoutHooks(collector, other.id)
    await collector.client.patch(`/v1/projects/${other.id}/settings`, { autoRemediation: {} }, as(owner))
    // a project without a rule for the type records nothing due in the first place
    const { project: none } = await project({ autoRemediation: { error_rate: switchRule.latency } })
    await openWithoutHooks(collector, none.id)
    expect(await count(collector, `auto_remediations_due where incident_id in ('${pending.id}', '${resolved.id}', '${dropped.id}')`)).toBe(3)
    expect(await count(collector, `auto_remediations_due d join incidents i on i.id = d.incident_id where i.project_id = '${none.id}'`)).toBe(0)

    await collector.app.remediation.runDueJob()
    expect((await remediationsOf(pending)).map((r) => r.automatic)).toEqual([true])
    expect(await remediationsOf(resolved)).toEqual([])
    expect(await remediationsOf(dropped)).toEqual([])
    expect(await count(collector, `auto_remediations_due where incident_id in ('${pending.id}', '${resolved.id}', '${dropped.id}')`)).toBe(0)
    expect((await policy(key)).modelOverrides).toEqual({ '*': 'gpt-4o-mini' })
    // ended again, so later tests' revert jobs count only their own
    expect((await collector.app.remediation.runExpiryJob(new Date(Date.now() + 31 * MINUTE))).expired).toBe(1)
  })
})

describe('policy violations at ingest', () => {
  it('flags calls to a disabled endpoint or a switched-away model from clients that do not enforce the policy; logs filter on it', async () => {
    const { project: p, key } = await project()
    const incident = await slowCall(collector, p, 'gpt-4.1')
    for (const body of [
      { actionType: 'disable_endpoint', parameters: { endpoint: 'completions' } },
      { actionType: 'switch_model', parameters: { from: 'gpt-4', to: 'gpt-4o-mini' } },
    ]) {
      await collector.client.post(`/v1/incidents/${incident.id}/remediations`, body, as(owner))
    }
    // calls made once SDKs have had time to hear of the change (the grace after it)
    const timestamp = new Date(Date.now() + POLICY_GRACE_MS + 1_000).toISOString()
    const records = [
      rec({ prompt: 'pv disabled endpoint', endpoint: 'completions', model: 'gpt-3.5-turbo-instruct', timestamp }),
      rec({ prompt: 'pv old model', endpoint: 'chat.completions', model: 'gpt-4', timestamp }),
      rec({ prompt: 'pv switched by the sdk', endpoint: 'chat.completions', model: 'gpt-4o-mini', requestedModel: 'gpt-4', timestamp }),
      rec({ prompt: 'pv other model', endpoint: 'chat.completions', model: 'gpt-4o', timestamp }),
      rec({ prompt: 'pv embeddings are never switched', endpoint: 'embeddings', model: 'gpt-4', timestamp }),
      rec({ prompt: 'pv blocked by the sdk', endpoint: 'completions', model: 'gpt-4', status: 'error', error: { type: 'ENDPOINT_DISABLED', message: 'off' }, metadata: { llmguardBlocked: 'ENDPOINT_DISABLED' }, timestamp }),
      // made before the change, shipped now (an outbox catching up): it broke no rule
      rec({ prompt: 'pv made before the change', endpoint: 'completions', model: 'gpt-4', timestamp: new Date(Date.now() - 600_000).toISOString() }),
    ]
    const result = await collector.client.post<BatchResult>('/v1/llm/requests/batch', { records }, { token: key })
    expect(result.accepted).toBe(records.length)
    const search = async (policyViolation: string) =>
      (await collector.client.get<Page<LogResult & { policyViolation: unknown }>>(`/v1/projects/${p.id}/logs`, { ...as(owner), query: { search: 'pv ', policyViolation, sortBy: 'timestamp', limit: '100' } })).items
    const flagged = await search('true')
    expect(Object.fromEntries(flagged.map((r) => [r.prompt, r.policyViolation]))).toEqual({
      'pv disabled endpoint': { disabledEndpoint: 'completions' },
      'pv old model': { switchedModel: { model: 'gpt-4', expected: 'gpt-4o-mini' } },
    })
    expect((await search('false')).map((r) => r.prompt).sort()).toEqual(
      ['pv blocked by the sdk', 'pv embeddings are never switched', 'pv made before the change', 'pv other model', 'pv switched by the sdk'].sort(),
    )
  })
})

describe.runIf(onRealPostgres())('two instances on one database', () => {
  it('sweeps of the same due actions at once apply each action once', async () => {
    const second = await startTestCollector({ databaseUrl: collector.databaseUrl, keepData: true })
    try {
      const opened: Incident[] = []
      for (let i = 0; i < 5; i++) {
        const { project: p } = await project({ autoRemediation: switchRule })
        opened.push(await openWithoutHooks(collector, p.id), await openWithoutHooks(collector, p.id, 'o3'))
      }
      const applied = await Promise.all([collector.app.remediation.runDueJob(), second.app.remediation.runDueJob(), second.app.remediation.service.autoApply(opened[3]!)])
      expect(applied[0] + applied[1] + (applied[2] ? 1 : 0)).toBe(opened.length)
      for (const incident of opened) {
        const items = await remediationsOf(incident)
        expect(items).toHaveLength(1)
        expect(items[0]!.audit.map((a) => a.event)).toEqual(['applied'])
      }
      // ended again, so later tests' revert jobs count only their own
      expect((await collector.app.remediation.runExpiryJob(new Date(Date.now() + 31 * MINUTE))).expired).toBe(opened.length)
    } finally {
      await second.close()
    }
  })


  it('apply the automatic action once per incident and revert it once', async () => {
    const second = await startTestCollector({ databaseUrl: collector.databaseUrl, keepData: true })
    try {
      const { project: p, key } = await project({ autoRemediation: switchRule })
      const incident = await slowCall(collector, p)
      expect(await remediationsOf(incident)).toHaveLength(1)
      // the other instance hears of the same incident (a hook run twice): still one action
      expect(await second.app.remediation.service.autoApply(incident)).toBeUndefined()
      expect(await remediationsOf(incident)).toHaveLength(1)

      const later = new Date(Date.now() + 31 * MINUTE)
      const runs = await Promise.all([collector.app.remediation.runExpiryJob(later), second.app.remediation.runExpiryJob(later)])
      expect(runs.reduce((n, r) => n + r.expired, 0)).toBe(1)
      const [r] = await remediationsOf(incident)
      expect(r!.audit.map((a) => a.event)).toEqual(['applied', 'expired'])
      expect(await count(collector, `remediation_audit where remediation_id = '${r!.id}'`)).toBe(2)
      expect((await policy(key)).modelOverrides).toEqual({})
    } finally {
      await second.close()
    }
  })
})
