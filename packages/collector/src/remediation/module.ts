import type { Sql } from '../db/connect.js'
import type { Principal, RouteDef } from '../http/route.js'
import type { IngestPipeline } from '../ingest/pipeline.js'
import { runExclusive } from '../jobs/leader.js'
import { JobScheduler } from '../jobs/scheduler.js'
import type { Logger } from '../logger.js'
import type { PolicyService } from '../policy/service.js'
import type { IncidentService } from '../incidents/service.js'
import { remediationRoutes } from './routes.js'
import { createRemediationService, type RemediationService } from './service.js'
import { lastChange } from './store.js'
import { policyViolationAnnotator } from './violations.js'

/** Every minute: automatic actions end within a minute of their time. */
export const EXPIRY_SCHEDULE = '* * * * *'
export const EXPIRY_JOB = 'remediation:expiry'
/** Every minute on every instance: automatic actions a crash or a failure left due. */
export const DUE_JOB = 'remediation:due'

export interface Remediations {
  service: RemediationService
  routes: RouteDef[]
  jobs: JobScheduler
  /** The revert job, one instance at a time (tests call it with their own clock). */
  runExpiryJob(now?: Date): Promise<{ ran: boolean; expired: number }>
  /**
   * Sweeps the automatic actions left due (start() runs it once at once, then every minute) and
   * resolves with how many that sweep applied. A call while a sweep runs gets a new sweep once
   * that one ends (calls meanwhile share it), so an action due after the running sweep listed
   * its own is not left for the next minute. After stop(): 0, nothing swept.
   */
  runDueJob(): Promise<number>
  start(): void
  stop(): Promise<void>
}

/**
 * The remediation domain wired up: the policy overlay, the API, automatic remediation on new
 * incidents, the policy-violation annotator of ingest, and the revert job.
 */
export function createRemediations(deps: {
  sql: Sql
  logger: Logger
  policy: PolicyService
  incidents: IncidentService
  ingest: IngestPipeline
  assertAccess(principal: Principal, projectId: string): Promise<void>
}): Remediations {
  const { sql, logger, policy } = deps
  const service = createRemediationService({ sql, logger, policy, assertAccess: deps.assertAccess })
  policy.addOverlay(service.overlay)
  const violations = policyViolationAnnotator(async (projectId) => {
    const current = await policy.get(projectId)
    // only a policy with something to break needs to know since when it holds
    const restricts = current.disabledEndpoints.length > 0 || Object.keys(current.modelOverrides).length > 0
    return { policy: current, changedAt: restricts ? await lastChange(sql, projectId) : -Infinity }
  })
  service.listeners.push(violations.invalidate)
  deps.ingest.annotators.push(violations.annotate)
  // at once on the instance that opened the incident; a crash before it leaves the action due
  // (recorded with the incident), for the sweeps of runDueJob
  // (a failure is logged by applyDue with what happens next: no second, vaguer line from the hook)
  deps.incidents.onOpened.push(async (incident) => void (await service.autoApply(incident).catch(() => undefined)))
  const jobs = new JobScheduler(logger)
  /** Set by stop(): a sweep ends after the action it is applying; the rest stays due for the next start. */
  let stopping = false
  let sweep: Promise<number> | undefined
  let followUp: Promise<number> | undefined

  function runDueJob(): Promise<number> {
    if (stopping) return Promise.resolve(0)
    // one sweep at a time per instance; instances sweeping at once apply each action once
    if (!sweep) {
      sweep = service.applyAllDue(() => stopping).finally(() => (sweep = undefined))
      return sweep
    }
    // (sweep's own finally has cleared it by the time this runs)
    followUp ??= sweep
      .catch(() => undefined)
      .then(() => {
        followUp = undefined
        return runDueJob()
      })
    return followUp
  }

  async function runExpiryJob(now = service.clock.now()) {
    const outcome = await runExclusive(sql, EXPIRY_JOB, (tx) => service.expireDue(tx, now))
    if (!outcome.ran) return { ran: false, expired: 0 }
    for (const r of outcome.result) {
      service.changed(r.projectId)
      logger.info({ remediationId: r.id, projectId: r.projectId, incidentId: r.incidentId }, 'automatic remediation expired')
    }
    return { ran: true, expired: outcome.result.length }
  }

  return {
    service,
    routes: remediationRoutes({ remediation: service }),
    jobs,
    runExpiryJob,
    runDueJob,
    start() {
      // the job's own clock: cron's tick time could lag a test's injected clock
      jobs.start([
        { name: DUE_JOB, schedule: EXPIRY_SCHEDULE, run: () => runDueJob() },
        { name: EXPIRY_JOB, schedule: EXPIRY_SCHEDULE, run: () => runExpiryJob() },
      ])
      // what the last run of this database left due (a crash between an incident and its action)
      runDueJob().catch((err: unknown) => logger.error({ err }, 'automatic remediation sweep failed'))
    },
    async stop() {
      stopping = true
      await jobs.stop()
      // the action being applied finishes (its transaction); none after it starts
      await sweep?.catch(() => undefined)
      await followUp?.catch(() => undefined)
    },
  }
}
