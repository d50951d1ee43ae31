import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import cron from 'node-cron'
import type { Project } from '@llmguard/shared'
import { findAnomalies, type HourPoint } from '../src/incidents/anomaly.js'
import { ANOMALY_JOB } from '../src/incidents/service.js'
import { onRealPostgres, startTestCollector, type TestCollector } from './helpers/collector.js'
import { createProject, signUp, type TestUser } from './helpers/accounts.js'

const HOUR = 3_600_000

/** A deterministic "noisy" baseline: 24 hours around the given means. */
function series(n = 24, base: Partial<{ requests: number; latency: number; errorRate: number; costPerRequest: number }> = {}): HourPoint[] {
  const { requests = 200, latency = 900, errorRate = 0.02, costPerRequest = 0.001 } = base
  return Array.from({ length: n }, (_, i) => {
    const wobble = Math.sin(i * 1.7) // deterministic noise in [-1, 1]
    const r = Math.round(requests * (1 + 0.15 * wobble))
    return { requests: r, errors: Math.round(r * errorRate * (1 + 0.3 * wobble)), latencySum: r * latency * (1 + 0.1 * wobble), cost: r * costPerRequest }
  })
}
const hour = (requests: number, latency: number, errorRate: number, costPerRequest = 0.001): HourPoint => ({
  requests,
  errors: Math.round(requests * errorRate),
  latencySum: requests * latency,
  cost: requests * costPerRequest,
})

describe('findAnomalies (3-sigma on synthetic series)', () => {
  it('finds nothing in ordinary noise', () => {
    const baseline = series()
    for (const h of [hour(230, 990, 0.025), hour(170, 820, 0.015), hour(200, 900, 0.02)]) expect(findAnomalies(h, baseline, 10)).toEqual([])
  })

  it('finds a latency spike, an error-rate spike, a volume spike and a cost spike', () => {
    const baseline = series()
    const kinds = (h: HourPoint) => findAnomalies(h, baseline, 10).map((f) => f.type)
    expect(kinds(hour(200, 4000, 0.02))).toEqual(['anomaly_latency'])
    expect(kinds(hour(200, 900, 0.3))).toEqual(['anomaly_error_rate'])
    expect(kinds(hour(1000, 900, 0.02, 0.0002))).toEqual(['anomaly_volume'])
    expect(kinds(hour(200, 900, 0.02, 0.01))).toEqual(['anomaly_cost'])
    const [latency] = findAnomalies(hour(200, 4000, 0.02), baseline, 10)
    expect(latency!.sigmas).toBeGreaterThan(3)
    expect(latency!.mean).toBeCloseTo(900, -2)
  })

  it('the minimum-volume guard: a quiet hour or a short baseline gives no verdict', () => {
    expect(findAnomalies(hour(9, 9000, 1), series(), 10)).toEqual([])
    expect(findAnomalies(hour(200, 9000, 1), series(5), 10)).toEqual([]) // 5 baseline hours < 6
    const sparse = series().map((h, i) => (i % 6 === 0 ? h : { requests: 0, errors: 0, latencySum: 0, cost: 0 }))
    expect(findAnomalies(hour(200, 9000, 1), sparse, 10)).toEqual([]) // 4 active hours
  })

  it('a flat baseline does not turn a small wobble into an anomaly (σ floored at 10 % of the mean)', () => {
    const flat = Array.from({ length: 24 }, () => hour(100, 1000, 0))
    expect(findAnomalies(hour(120, 1200, 0.005), flat, 10)).toEqual([])
    expect(findAnomalies(hour(100, 1400, 0), flat, 10).map((f) => f.type)).toEqual(['anomaly_latency'])
  })
})

describe('the hourly anomaly job', () => {
  let collector: TestCollector
  let owner: TestUser
  const NOW = new Date('2025-05-05T12:05:00Z')
  const LAST = new Date('2025-05-05T11:00:00Z')

  beforeAll(async () => {
    collector = await startTestCollector()
    // these tests drive the job with a clock of their own: the real one's run at minute 5 of an
    // hour would add a period of today to job_runs under them
    await collector.app.incidents.jobs.stop()
    owner = await signUp(collector)
  })
  afterAll(() => collector.close())

  async function seed(p: Project, spikeLatency: number, sql = collector.sql) {
    const points = series()
    for (let i = 0; i < 24; i++) {
      const h = points[i]!
      await sql`insert into request_rollups (project_id, hour, model, requests, errors, latency_sum, tokens, cost_sum, unpriced)
        values (${p.id}, ${new Date(LAST.getTime() - (24 - i) * HOUR)}, 'gpt-4o', ${h.requests}, ${h.errors}, ${Math.round(h.latencySum)}, 0, ${h.cost}, 0)`
    }
    await sql`insert into request_rollups (project_id, hour, model, requests, errors, latency_sum, tokens, cost_sum, unpriced)
      values (${p.id}, ${LAST}, 'gpt-4o', 200, 4, ${200 * spikeLatency}, 0, 0.2, 0)`
  }

  it('runs once per hour for every active project: the spike is found, the normal project is not flagged', async () => {
    const spiky = await createProject(collector, owner, 'spiky')
    const calm = await createProject(collector, owner, 'calm')
    await seed(spiky, 5000)
    await seed(calm, 950)
    const run = await collector.app.incidents.service.runAnomalyJob(NOW)
    expect(run.ran).toBe(true)
    const rows = await collector.sql<{ projectId: string; type: string; key: string; occurrences: number }[]>`
      select project_id as "projectId", type, key, occurrences from incidents order by project_id`
    expect(rows).toEqual([{ projectId: spiky.id, type: 'anomaly_latency', key: '*', occurrences: 1 }])
    // the same period never runs twice
    expect(await collector.app.incidents.service.runAnomalyJob(new Date(NOW.getTime() + 20 * 60_000))).toEqual({ ran: false, reason: 'done' })
    const [job] = await collector.sql`select period, finished_at is not null as finished from job_runs where job = ${ANOMALY_JOB}`
    expect(job).toEqual({ period: LAST.toISOString(), finished: true })
  })

  it('catches up on the hours a failed run or downtime left out, and counts an hour once however often it is looked at', async () => {
    const own = await startTestCollector()
    await own.app.incidents.jobs.stop()
    try {
      const user = await signUp(own)
      const p = await createProject(own, user, 'catch-up')
      await seed(p, 5000, own.sql)
      const service = own.app.incidents.service
      // the run at 10:05 judged 09:00–10:00; no collector was up at 11:05 and 12:05
      expect((await service.runAnomalyJob(new Date(LAST.getTime() - HOUR + 5 * 60_000))).ran).toBe(true)
      expect(await own.sql`select type from incidents`).toEqual([])
      const run = await service.runAnomalyJob(new Date(NOW.getTime() + HOUR))
      expect(run.ran).toBe(true)
      const rows = await own.sql<{ type: string; occurrences: number; hour: string }[]>`
        select type, occurrences, metadata->>'hour' as hour from incidents where project_id = ${p.id}`
      expect(rows).toEqual([{ type: 'anomaly_latency', occurrences: 1, hour: LAST.toISOString() }])
      const periods = await own.sql<{ period: string }[]>`select period from job_runs where job = ${ANOMALY_JOB} and finished_at is not null order by period`
      // 13:05 judged 10:00, 11:00 (the spike) and 12:00
      expect(periods.map((r) => r.period)).toEqual([-2, -1, 0, 1].map((h) => new Date(LAST.getTime() + h * HOUR).toISOString()))
      // the on-demand detect of the same hour, twice: found again, counted no more
      await service.detect(p.id, NOW)
      await service.detect(p.id, NOW)
      expect((await own.sql`select occurrences from incidents where project_id = ${p.id}`)[0]).toEqual({ occurrences: 1 })
    } finally {
      await own.close()
    }
  })

  it('an hour counted once stays counted after its incident is resolved, and detects at the same moment count it once', async () => {
    const service = collector.app.incidents.service
    const p = await createProject(collector, owner, 'resolve-then-detect')
    await seed(p, 5000)
    const opened: string[] = []
    service.onOpened.push((incident) => {
      if (incident.projectId === p.id) opened.push(incident.id)
    })
    // five detects of the same hour at once: one counts it
    const results = await Promise.all(Array.from({ length: 5 }, () => service.detect(p.id, NOW)))
    expect(results.flatMap((r) => r.incidents).map((i) => i.type)).toEqual(['anomaly_latency'])
    const incidents = () =>
      collector.sql<{ id: string; status: string; occurrences: number }[]>`select id, status, occurrences from incidents where project_id = ${p.id} order by first_seen_at`
    const [first] = await incidents()
    expect(first).toMatchObject({ status: 'open', occurrences: 1 })
    // resolved by its owner: the same hour, detected again or judged by the job, opens nothing
    await collector.sql`update incidents set status = 'resolved', resolved_at = now() where id = ${first!.id}`
    expect((await service.detect(p.id, NOW)).incidents).toEqual([])
    expect(await incidents()).toEqual([{ id: first!.id, status: 'resolved', occurrences: 1 }])
    expect(opened).toEqual([first!.id])
  })

  it('schedules the job with node-cron and destroys the task on stop', async () => {
    const other = await startTestCollector()
    const names = other.app.incidents.jobs.names
    expect(names).toHaveLength(1)
    expect([...cron.getTasks().values()].map((t) => t.name)).toContain(names[0])
    await other.close()
    expect([...cron.getTasks().values()].map((t) => t.name)).not.toContain(names[0])
  })

  it.skipIf(!onRealPostgres())('two instances on one database: one run per period', async () => {
    const second = await startTestCollector({ databaseUrl: collector.databaseUrl, keepData: true })
    await second.app.incidents.jobs.stop()
    try {
      const p = await createProject(collector, owner, `two-${randomUUID().slice(0, 6)}`)
      const later = new Date(NOW.getTime() + 24 * HOUR)
      const lastHour = new Date(LAST.getTime() + 24 * HOUR)
      for (let i = 0; i < 24; i++) {
        await collector.sql`insert into request_rollups (project_id, hour, model, requests, errors, latency_sum, tokens, cost_sum, unpriced)
          values (${p.id}, ${new Date(lastHour.getTime() - (24 - i) * HOUR)}, 'm', ${100 + (i % 4)}, 1, ${(100 + (i % 4)) * 900}, 0, 0.1, 0)`
      }
      await collector.sql`insert into request_rollups (project_id, hour, model, requests, errors, latency_sum, tokens, cost_sum, unpriced)
        values (${p.id}, ${lastHour}, 'm', 100, 1, ${100 * 6000}, 0, 0.1, 0)`
      const runs = await Promise.all([
        collector.app.incidents.service.runAnomalyJob(later),
        second.app.incidents.service.runAnomalyJob(later),
        collector.app.incidents.service.runAnomalyJob(later),
        second.app.incidents.service.runAnomalyJob(later),
      ])
      expect(runs.filter((r) => r.ran)).toHaveLength(1)
      const rows = await collector.sql`select occurrences from incidents where project_id = ${p.id}`
      expect(rows).toEqual([{ occurrences: 1 }])
      const periods = await collector.sql`select count(*)::int as n from job_runs where job = ${ANOMALY_JOB} and period = ${lastHour.toISOString()}`
      expect(periods[0]!.n).toBe(1)
    } finally {
      await second.close()
    }
  })
})
