import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Incident, LlmRecordInput, Page, Project, Remediation } from '@llmguard/shared'
import type { IngestContext } from '../src/ingest/pipeline.js'
import type { Signal } from '../src/incidents/store.js'
import { createLogger } from '../src/logger.js'
import { MAX_DUE_ATTEMPTS } from '../src/remediation/service.js'
import { ownDatabase, startTestCollector, type TestCollector } from './helpers/collector.js'
import { count, createProject, signUp, type TestUser } from './helpers/accounts.js'

/** A logger whose lines the test reads; `onLine` runs synchronously, inside the code that logs. */
function capturingLogger(onLine?: (line: { level: number; msg: string; incidentId?: string }) => void) {
  const lines: { level: number; msg: string; incidentId?: string }[] = []
  const logger = createLogger('info', {
    write: (text: string) => {
      const line = JSON.parse(text) as { level: number; msg: string; incidentId?: string }
      lines.push(line)
      onLine?.(line)
    },
  } as never)
  return { lines, logger }
}

const switchRule = { latency: { action: 'switch_model', parameters: { to: 'gpt-4o-mini' }, durationMinutes: 30 } }
const APPLIED = 'automatic remediation applied'

let onLine: ((line: { msg: string; incidentId?: string }) => void) | undefined
const log = capturingLogger((line) => onLine?.(line))
let collector: TestCollector
let owner: TestUser

beforeAll(async () => {
  collector = await startTestCollector({ logger: log.logger })
  owner = await signUp(collector)
})
afterAll(() => collector.close())

async function ruledProject(c: TestCollector, user: TestUser): Promise<Project> {
  const p = await createProject(c, user, `p-${randomUUID().slice(0, 8)}`)
  await c.client.patch(`/v1/projects/${p.id}/settings`, { autoRemediation: switchRule }, { token: user.accessToken })
  return p
}

/** A latency incident committed without running the opened hooks: its action is left due. */
async function openWithoutHooks(c: TestCollector, projectId: string, model = 'gpt-4o'): Promise<Incident> {
  const signal: Signal = { projectId, type: 'latency', key: model, severity: 'high', title: `slow ${model}`, count: 1, at: new Date(), metadata: {} }
  const [raised] = await c.app.incidents.service.raise(c.sql, [signal])
  expect(raised!.opened).toBe(true)
  return raised!.incident
}

const remediationsOf = async (incident: Incident) =>
  (await collector.client.get<Page<Remediation>>(`/v1/incidents/${incident.id}/remediations`, { token: owner.accessToken })).items

/** Every insert of a remediation for the incident fails (a constraint, a disk error…) until the returned function runs. */
async function failInsertsOf(c: TestCollector, column: 'incident_id' | 'project_id', id: string): Promise<() => Promise<void>> {
  await c.sql.unsafe(`create or replace function test_fail_remediation() returns trigger language plpgsql as $$
    begin if new.${column} = '${id}' then raise exception 'injected failure'; end if; return new; end $$`)
  await c.sql.unsafe(`create trigger test_fail_remediation before insert on remediations for each row execute function test_fail_remediation()`)
  return async () => void (await c.sql.unsafe(`drop trigger test_fail_remediation on remediations`))
}

const messagesAbout = (incidentId: string) => log.lines.filter((l) => l.incidentId === incidentId && /remediation/.test(l.msg)).map((l) => l.msg)

describe('a failing automatic remediation logs what happens next, truthfully', () => {
  it(`says "retrying" while it will be retried, and only "given up" after the ${MAX_DUE_ATTEMPTS}th failure`, async () => {
    const p = await ruledProject(collector, owner)
    const incident = await openWithoutHooks(collector, p.id)
    const heal = await failInsertsOf(collector, 'incident_id', incident.id)
    try {
      for (let i = 0; i < MAX_DUE_ATTEMPTS; i++) expect(await collector.app.remediation.runDueJob()).toBe(0)
    } finally {
      await heal()
    }
    const retrying = 'automatic remediation failed; retrying at the next sweep'
    expect(messagesAbout(incident.id)).toEqual([...Array<string>(MAX_DUE_ATTEMPTS - 1).fill(retrying), `automatic remediation given up after ${MAX_DUE_ATTEMPTS} failed attempts`])
    expect(await count(collector, `auto_remediations_due where incident_id = '${incident.id}'`)).toBe(0)
    // given up means given up: a later sweep applies nothing
    expect(await collector.app.remediation.runDueJob()).toBe(0)
    expect(await remediationsOf(incident)).toEqual([])
  })

  it('does not claim to have given up an action that left the due list by another way meanwhile (another instance applied it)', async () => {
    const p = await ruledProject(collector, owner)
    const incident = await openWithoutHooks(collector, p.id)
    await collector.sql`update auto_remediations_due set attempts = ${MAX_DUE_ATTEMPTS - 1} where incident_id = ${incident.id}`
    // the last allowed failure is counted, and the row goes at once by another hand: what another
    // instance taking it (to apply it) between the count and the removal would do
    await collector.sql.unsafe(`create or replace function test_take_due() returns trigger language plpgsql as $$
      begin delete from auto_remediations_due where incident_id = new.incident_id; return null; end $$`)
    await collector.sql.unsafe(`create trigger test_take_due after update on auto_remediations_due for each row
      when (new.incident_id = '${incident.id}') execute function test_take_due()`)
    const heal = await failInsertsOf(collector, 'incident_id', incident.id)
    try {
      expect(await collector.app.remediation.runDueJob()).toBe(0)
    } finally {
      await heal()
      await collector.sql.unsafe(`drop trigger test_take_due on auto_remediations_due`)
    }
    expect(messagesAbout(incident.id)).toEqual(['automatic remediation failed here, and is no longer due (another instance applied it, or the incident or project is gone)'])
  })

  it('a failure of the immediate application says it will be retried by the sweep, which then applies it', async () => {
    const p = await ruledProject(collector, owner)
    const heal = await failInsertsOf(collector, 'project_id', p.id)
    let incident: Incident
    try {
      const ctx: IngestContext = { projectId: p.id, ownerId: owner.id, sensitiveKeywords: [], priceOverrides: {}, receivedAt: new Date(), requestId: randomUUID() }
      const slow: LlmRecordInput = { prompt: 'hello', response: 'hi', model: 'gpt-4o', latency: 9_000 }
      await collector.app.ingest.ingest([slow], ctx)
      const page = await collector.client.get<Page<Incident>>(`/v1/projects/${p.id}/incidents`, { token: owner.accessToken, query: { type: 'latency' } })
      incident = page.items[0]!
    } finally {
      await heal()
    }
    expect(messagesAbout(incident.id)).toEqual(['automatic remediation failed; retrying at the next sweep'])
    expect(log.lines.filter((l) => l.incidentId === incident.id && l.msg === 'incident-opened hook failed')).toEqual([])
    expect(await collector.app.remediation.runDueJob()).toBe(1)
    expect((await remediationsOf(incident)).map((r) => r.automatic)).toEqual([true])
    expect(messagesAbout(incident.id).at(-1)).toBe(APPLIED)
  })
})

describe('runDueJob while a sweep is running', () => {
  it('runs a sweep of its own after it: an action due since the running sweep listed its own is applied, and the count is its own', async () => {
    // what earlier tests may have left due is no part of this one
    await collector.app.remediation.runDueJob()
    const listed: Incident[] = []
    for (let i = 0; i < 5; i++) listed.push(await openWithoutHooks(collector, (await ruledProject(collector, owner)).id))
    const late = await ruledProject(collector, owner)
    let lateIncident: Promise<Incident> | undefined
    let during: Promise<number> | undefined
    onLine = (line) => {
      if (line.msg !== APPLIED || during) return
      // inside the first sweep, which has listed its five: an incident opens, and a sweep is asked for
      lateIncident = openWithoutHooks(collector, late.id)
      during = collector.app.remediation.runDueJob()
    }
    try {
      expect(await collector.app.remediation.runDueJob()).toBe(5)
    } finally {
      onLine = undefined
    }
    expect(during).toBeDefined()
    expect(await during).toBe(1)
    const incident = await lateIncident!
    expect((await remediationsOf(incident)).map((r) => r.automatic)).toEqual([true])
    for (const i of listed) expect(await remediationsOf(i)).toHaveLength(1)
  })
})

describe('stopping the collector during a sweep', () => {
  it('does not wait for the whole backlog; what is left stays due and the next start applies it, each action once', async () => {
    const own = await ownDatabase()
    const where = own.where
    try {
      const first = await startTestCollector(where)
      const user = await signUp(first)
      const projects: Project[] = []
      for (let i = 0; i < 5; i++) projects.push(await ruledProject(first, user))
      const N = 200
      const signals: Signal[] = Array.from({ length: N }, (_, i) => ({
        projectId: projects[i % projects.length]!.id, type: 'latency', key: `m${i}`, severity: 'high', title: 'slow', count: 1, at: new Date(), metadata: {},
      }))
      await first.app.incidents.service.raise(first.sql, signals)
      await first.close()

      // the next start sweeps the backlog; it is told to stop once the sweep has applied one
      let sweeping!: () => void
      const firstApplied = new Promise<void>((resolve) => (sweeping = resolve))
      const secondLog = capturingLogger((l) => l.msg === APPLIED && sweeping())
      const second = await startTestCollector({ ...where, logger: secondLog.logger })
      await firstApplied
      await second.close()
      const appliedBySecond = secondLog.lines.filter((l) => l.msg === APPLIED).length
      // stopped part-way: the rest was left due, not applied while the stop waited
      expect(appliedBySecond).toBeGreaterThan(0)
      expect(appliedBySecond).toBeLessThan(N)

      const thirdLog = capturingLogger()
      const third = await startTestCollector({ ...where, logger: thirdLog.logger })
      try {
        // the third start's sweep applies the rest, and nothing twice
        await vi.waitFor(async () => expect(await count(third, 'auto_remediations_due')).toBe(0), { timeout: 20_000, interval: 100 })
        expect(await count(third, 'remediations')).toBe(N)
        expect(await count(third, '(select incident_id from remediations group by incident_id having count(*) > 1) twice')).toBe(0)
        expect(thirdLog.lines.filter((l) => l.msg === APPLIED)).toHaveLength(N - appliedBySecond)
        expect(await third.app.remediation.runDueJob()).toBe(0)
      } finally {
        await third.close()
      }
    } finally {
      await own.remove()
    }
  }, 60_000)
})
