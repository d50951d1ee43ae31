import {
  isForwardTransition,
  type DetectResult,
  type Incident,
  type IncidentDetail,
  type IncidentQuery,
  type IncidentStatus,
  type Page,
} from '@llmguard/shared'
import type { Db, Sql } from '../db/connect.js'
import { AppError, notFound } from '../http/errors.js'
import type { Principal } from '../http/route.js'
import type { IngestContext, ScoredRecord } from '../ingest/pipeline.js'
import { runOncePerPeriod } from '../jobs/leader.js'
import type { Logger } from '../logger.js'
import { activeProjects, anomalySignals } from './anomaly.js'
import { relatedFilter } from './evidence.js'
import type { Decision } from '../ratelimit/window.js'
import type { RcaWorker } from './rca.js'
import { highRiskSignals, hourOf, latencySignals, rollupSignals } from './rules.js'
import * as store from './store.js'
import { readThresholds, ThresholdCache } from './thresholds.js'

const HOUR_MS = 3_600_000
export const ANOMALY_JOB = 'incidents:anomaly'
/** How many missed hours the anomaly job catches up on (the last complete hour included). */
export const ANOMALY_CATCH_UP_HOURS = 24

/**
 * The hours of the ANOMALY_CATCH_UP_HOURS before `last` that the anomaly job has not finished
 * since it first ran on this database, oldest first.
 */
async function missedAnomalyHours(sql: Sql, last: Date): Promise<Date[]> {
  const [first] = await sql<{ period: string }[]>`select period from job_runs where job = ${ANOMALY_JOB} and finished_at is not null order by period limit 1`
  if (!first) return []
  const from = Math.max(last.getTime() - (ANOMALY_CATCH_UP_HOURS - 1) * HOUR_MS, Date.parse(first.period))
  const rows = await sql<{ period: string }[]>`
    select period from job_runs where job = ${ANOMALY_JOB} and finished_at is not null and period >= ${new Date(from).toISOString()}`
  const done = new Set(rows.map((r) => r.period))
  const missed: Date[] = []
  for (let t = from; t < last.getTime(); t += HOUR_MS) if (!done.has(new Date(t).toISOString())) missed.push(new Date(t))
  return missed
}

/** Analyses a user may ask for again per minute (each may be a paid OpenAI call of the operator's). */
export const RCA_REGENERATIONS_PER_MINUTE = 10

/**
 * Runs after a new incident is committed (not on repeats), on the instance that opened it.
 * Failures are logged and never undo the incident. A crash between the commit and the hook
 * skips the hook: work that must happen is recorded by the statement that opens the incident
 * (store.upsertIncidents queues the analysis and the automatic remediation), and a hook only
 * gets it done at once (remediation's automatic rules hook in here that way).
 */
export type IncidentOpenedHook = (incident: Incident) => Promise<void> | void

export interface IncidentServiceDeps {
  sql: Sql
  logger: Logger
  rca: RcaWorker
  /** Ownership check of the projects service (404 unknown, 403 another user's). */
  assertAccess(principal: Principal, projectId: string): Promise<void>
  /** The collector's rate limiter (shared by every instance on real Postgres). */
  rateLimit(subject: string, perMinute: number): Decision | Promise<Decision>
}

export type Raised = Awaited<ReturnType<typeof store.upsertIncident>>

export function createIncidentService(deps: IncidentServiceDeps) {
  const { sql, logger, rca } = deps
  const thresholds = new ThresholdCache(sql)
  const onOpened: IncidentOpenedHook[] = []
  /** At most RCA_REGENERATIONS_PER_MINUTE analyses a minute per user, counted across instances. */
  const allowRegeneration = async (who: string) => {
    const decision = await deps.rateLimit(`rca:${who}`, RCA_REGENERATIONS_PER_MINUTE)
    if (decision.allowed) return
    const retryAfter = decision.resetSeconds
    throw new AppError('RATE_LIMITED', `at most ${RCA_REGENERATIONS_PER_MINUTE} analyses a minute; try again in ${retryAfter} s`, { retryAfter }, { 'retry-after': String(retryAfter) })
  }

  /** Opens or counts each signal (inside the caller's transaction when given one). */
  async function raise(db: Db, signals: store.Signal[]): Promise<Raised[]> {
    return signals.length ? store.upsertIncidents(db, signals) : []
  }

  /** After commit: start the queued analyses and tell the opened-incident hooks. */
  async function notify(raised: Raised[]): Promise<void> {
    const opened = raised.filter((r) => r.opened)
    if (!opened.length) return
    rca.kick()
    for (const { incident } of opened) {
      // not `key`: the logger redacts any field of that name (an API key's usual one)
      logger.info({ incidentId: incident.id, projectId: incident.projectId, type: incident.type, incidentKey: incident.key }, 'incident opened')
      for (const hook of onOpened) {
        try {
          await hook(incident)
        } catch (err) {
          logger.error({ err, incidentId: incident.id }, 'incident-opened hook failed')
        }
      }
    }
  }

  async function owned(principal: Principal, id: string): Promise<Incident> {
    const incident = await store.findIncident(sql, id)
    if (!incident) throw notFound('incident')
    await deps.assertAccess(principal, incident.projectId)
    return incident
  }

  /** Anomaly detection of one complete hour for one project (the job and the detect route). */
  async function detectProject(db: Db, projectId: string, hour: Date, now: Date): Promise<Raised[]> {
    const t = await readThresholds(db, projectId)
    const signals = await anomalySignals(db, projectId, hour, t.incidentMinRequests, now)
    if (!signals.length) return []
    // one hour's anomaly counts once: the on-demand detect and the job (or two detects) may
    // both look at the same hour, before or after its incident was resolved
    const fresh = await store.claimAnomalyHours(db, projectId, hour, signals.map((s) => s.type))
    return raise(db, signals.filter((s) => fresh.has(s.type)))
  }

  return {
    onOpened,

    /** The ingest after-store hook: the four rule triggers on the batch just stored. */
    async afterStore(stored: ScoredRecord[], ctx: Pick<IngestContext, 'projectId' | 'receivedAt'>): Promise<void> {
      const t = await thresholds.get(ctx.projectId)
      const now = ctx.receivedAt
      const signals = [
        ...latencySignals(ctx.projectId, stored, t, now),
        ...(await highRiskSignals(sql, ctx.projectId, stored, t, now)),
        ...(await rollupSignals(sql, ctx.projectId, stored, t, now)),
      ]
      if (signals.length) await notify(await raise(sql, signals))
    },

    raise,
    notify,

    /** After a settings change commits on this instance: the rules use the new thresholds from the next batch. */
    invalidateThresholds: (projectId: string) => thresholds.invalidate(projectId),

    list(projectId: string, q: IncidentQuery): Promise<Page<Incident>> {
      return store.listIncidents(sql, projectId, q)
    },

    async get(principal: Principal, id: string): Promise<IncidentDetail> {
      const incident = await owned(principal, id)
      return { ...incident, relatedRequests: await store.relatedRequests(sql, relatedFilter(incident)) }
    },

    /** Forward only: open → acknowledged → resolved (open → resolved allowed); the same status is a no-op. */
    async setStatus(principal: Principal, id: string, status: IncidentStatus, now = new Date()): Promise<Incident> {
      await owned(principal, id)
      return sql.begin(async (tx) => {
        const current = await store.findIncident(tx, id, true)
        if (!current) throw notFound('incident')
        if (current.status === status) return current
        if (!isForwardTransition(current.status, status)) {
          throw new AppError('INVALID_TRANSITION', `an incident cannot go from ${current.status} back to ${status}`, { from: current.status, to: status })
        }
        return store.setStatus(tx, id, status, now)
      })
    },

    /** `POST /v1/projects/:id/incidents/detect`: anomaly detection of the last complete hour, now. */
    async detect(projectId: string, now = new Date()): Promise<DetectResult> {
      const hour = new Date(hourOf(now).getTime() - HOUR_MS)
      // one transaction: the hour is claimed only with the incidents it raised
      const raised = await sql.begin((tx) => detectProject(tx, projectId, hour, now))
      await notify(raised)
      return { hour: hour.toISOString(), incidents: raised.map((r) => r.incident) }
    },

    /**
     * The hourly job: every project with traffic in the last complete hour, once per hour across
     * all instances. Returns what ran (tests call it directly with a fake clock).
     */
    async runAnomalyJob(now = new Date()) {
      const last = new Date(hourOf(now).getTime() - HOUR_MS)
      let outcome: Awaited<ReturnType<typeof runOncePerPeriod<Raised[]>>> = { ran: false, reason: 'done' }
      // the last complete hour, after the hours a failed run or a time with no collector up left
      // out (oldest first, at most a day back: past that the baseline says little about now)
      for (const hour of [...(await missedAnomalyHours(sql, last)), last]) {
        outcome = await runOncePerPeriod(sql, ANOMALY_JOB, hour.toISOString(), async (tx) => {
          const raised: Raised[] = []
          for (const projectId of await activeProjects(tx, hour)) {
            // one project's failure loses its own hour, not every project's
            try {
              raised.push(...(await tx.savepoint((sp) => detectProject(sp, projectId, hour, now))))
            } catch (err) {
              logger.error({ err, projectId, hour: hour.toISOString() }, 'anomaly detection failed for a project')
            }
          }
          return raised
        })
        if (outcome.ran) {
          await notify(outcome.result)
          logger.info({ hour: hour.toISOString(), incidents: outcome.result.length }, 'anomaly detection ran')
        }
      }
      return outcome
    },

    /** `POST /v1/incidents/:id/rca`: queue a new analysis and run it now when no other worker holds it. */
    async regenerate(principal: Principal, id: string): Promise<{ incident: Incident; done: boolean }> {
      await owned(principal, id)
      await allowRegeneration(principal.kind === 'user' ? `user:${principal.userId}` : JSON.stringify(principal))
      await store.requestAnalysis(sql, id)
      const done = await rca.runNow(id)
      return { incident: (await store.findIncident(sql, id))!, done }
    },
  }
}

export type IncidentService = ReturnType<typeof createIncidentService>
