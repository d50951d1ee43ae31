import type { Config } from '../config.js'
import type { Sql } from '../db/connect.js'
import type { Principal, RouteDef } from '../http/route.js'
import { createRcaClient } from '../integrations/openai.js'
import { JobScheduler } from '../jobs/scheduler.js'
import type { Logger } from '../logger.js'
import { datadogRoutes } from '../webhooks/datadog.js'
import { RcaWorker } from './rca.js'
import { incidentRoutes } from './routes.js'
import { createIncidentService, type IncidentService, type IncidentServiceDeps } from './service.js'

/** How long the RCA model may take before the heuristic analysis is stored instead. */
export const RCA_TIMEOUT_MS = 30_000
/** Minute 5 of every hour: the last hour's late records have mostly arrived by then. */
export const ANOMALY_SCHEDULE = '5 * * * *'

export interface Incidents {
  service: IncidentService
  rca: RcaWorker
  jobs: JobScheduler
  routes: RouteDef[]
  start(): void
  stop(): Promise<void>
}

/** The incidents domain wired up: rules, API, Datadog webhook, RCA worker, hourly job. */
export function createIncidents(deps: {
  sql: Sql
  logger: Logger
  config: Pick<Config, 'openai' | 'datadog'>
  assertAccess(principal: Principal, projectId: string): Promise<void>
  /** Tells which project an API key belongs to (the Datadog webhook names its project by key). */
  verifyKey(key: string): Promise<{ projectId: string } | undefined>
  rateLimit: IncidentServiceDeps['rateLimit']
}): Incidents {
  const { sql, logger, config } = deps
  const client = config.openai.apiKey
    ? createRcaClient({ apiKey: config.openai.apiKey, baseUrl: config.openai.baseUrl, model: config.openai.rcaModel, timeoutMs: RCA_TIMEOUT_MS })
    : undefined
  const rca = new RcaWorker({ sql, logger, client, dailyLimit: config.openai.rcaDailyLimit })
  const service = createIncidentService({ sql, logger, rca, assertAccess: deps.assertAccess, rateLimit: deps.rateLimit })
  const jobs = new JobScheduler(logger)
  return {
    service,
    rca,
    jobs,
    routes: [...incidentRoutes({ incidents: service }), ...datadogRoutes({ sql, secret: config.datadog.webhookSecret, incidents: service, verifyKey: deps.verifyKey })],
    start() {
      rca.start()
      jobs.start([{ name: 'incidents-anomaly', schedule: ANOMALY_SCHEDULE, run: (now) => service.runAnomalyJob(now) }])
    },
    async stop() {
      await jobs.stop()
      await rca.stop()
    },
  }
}
