import { USER_RATE_LIMIT_PER_MINUTE, type Readiness } from '@llmguard/shared'
import type { Config, Secrets } from './config.js'
import type { Sql } from './db/connect.js'
import { createAuthenticator } from './auth/guard.js'
import { authRoutes } from './auth/routes.js'
import { createAuthService } from './auth/service.js'
import { tokenHolder } from './auth/store.js'
import { createTokenSigner } from './auth/tokens.js'
import { appliedVersion } from './db/migrate.js'
import { healthRoutes } from './health/routes.js'
import { buildOpenApi } from './http/openapi.js'
import type { HttpServer } from './http/server.js'
import type { Logger } from './logger.js'
import { KeyVerifier } from './projects/keys.js'
import { projectRoutes } from './projects/routes.js'
import { createProjectService } from './projects/service.js'
import { RateLimiter } from './ratelimit/service.js'
import { policyRoutes } from './policy/routes.js'
import { createPolicyService } from './policy/service.js'
import { settingsRoutes } from './settings/routes.js'
import { createSettingsService, type SettingsCommitHook } from './settings/service.js'
import { VERSION } from './version.js'
import { ProjectContextCache } from './ingest/context.js'
import { IngestPipeline } from './ingest/pipeline.js'
import { ingestRoutes } from './ingest/routes.js'
import { copyRecords, insertRecords } from './ingest/store.js'
import { SearchIndexer } from './logs/indexer.js'
import { logsRoutes } from './logs/routes.js'
import { metricsRoutes } from './metrics/routes.js'
import { createIncidents, type Incidents } from './incidents/module.js'
import { createBilling, type Billing } from './billing/module.js'
import { createRemediations, type Remediations } from './remediation/module.js'
import { Housekeeping } from './jobs/housekeeping.js'

export interface AppDeps {
  config: Config
  sql: Sql
  secrets: Secrets
  logger: Logger
  http: HttpServer
  /** True on the embedded database (single instance, no LISTEN/NOTIFY). */
  embedded: boolean
  latestMigration: number
}

export interface App {
  /** The ingest pipeline: features add their meter, annotator and after-store steps here. */
  ingest: IngestPipeline
  searchIndexer: SearchIndexer
  /** Incidents: `incidents.service.onOpened` is where features react to a new incident. */
  incidents: Incidents
  /** Billing: usage meter (its `clock` decides the usage month), plans, Stripe. */
  billing: Billing
  /** Remediation: actions over the policy, automatic rules on new incidents, the revert job. */
  remediation: Remediations
  /** Prunes bookkeeping tables (webhook ids, job runs, RCA counters, expired tokens) hourly. */
  housekeeping: Housekeeping
  /** Stops background work (jobs, listeners) before the database closes. */
  stop(): Promise<void>
}

const READINESS_TIMEOUT_MS = 2_000

/** Wires the domains together: the only module that knows all of them. */
export async function createApp(deps: AppDeps): Promise<App> {
  const { http, sql, secrets, config, logger, embedded } = deps
  let openapi: unknown

  const readiness = async (): Promise<Readiness> => {
    let timer: NodeJS.Timeout | undefined
    try {
      const version = await Promise.race([
        appliedVersion(sql),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('database check timed out')), READINESS_TIMEOUT_MS)
        }),
      ])
      const applied = version >= deps.latestMigration
      return { status: applied ? 'ready' : 'not_ready', database: 'up', migrations: applied ? 'applied' : 'pending', version: VERSION }
    } catch (err) {
      deps.logger.warn({ err: (err as Error).message }, 'readiness check failed')
      return { status: 'not_ready', database: 'down', migrations: 'unknown', version: VERSION }
    } finally {
      clearTimeout(timer)
    }
  }

  http.register(
    ...healthRoutes({
      readiness,
      openapi: () => (openapi ??= buildOpenApi(http.routes, VERSION)),
    }),
  )

  const signer = createTokenSigner(secrets)
  const keys = new KeyVerifier({ sql, pepper: secrets.apiKeyPepper, logger, embedded })
  const auth = createAuthService({ sql, signer, allowSignup: config.allowSignup, signupLimit: config.signupLimit })
  const projects = createProjectService({ sql, pepper: secrets.apiKeyPepper, keys })
  http.setAuthenticator(
    createAuthenticator({
      signer,
      keys,
      assertAccess: projects.assertAccess,
      holder: (userId, sessionId) => tokenHolder(sql, userId, sessionId),
    }),
  )
  const limiter = new RateLimiter({ sql, logger, embedded })
  await limiter.start()
  http.setRateLimiter((principal) => {
    if (principal.kind === 'apiKey') return limiter.enforce(`key:${principal.keyId}`, keys.rateLimitOf(principal.keyId))
    if (principal.kind === 'user') return limiter.enforce(`user:${principal.userId}`, USER_RATE_LIMIT_PER_MINUTE)
    return undefined
  })
  const policy = createPolicyService({ sql })
  const projectContexts = new ProjectContextCache(sql)
  // features created further down add their own (the incident thresholds)
  const settingsAfterCommit: SettingsCommitHook[] = [
    // cached keys carry their project's rate limit
    async (_projectId, before, after) => void (before.rateLimit !== after.rateLimit && (await keys.invalidate())),
    // scoring keywords and price overrides apply from the next record on this instance (others within 1 s)
    async (projectId) => projectContexts.invalidate(projectId),
    // the in-transaction invalidation may be refilled before the commit: drop it again after
    async (projectId) => policy.invalidate(projectId),
  ]
  const settings = createSettingsService({ sql, onChange: [policy.settingsChanged], afterCommit: settingsAfterCommit })
  http.register(
    ...authRoutes({ auth, corsOrigins: config.corsOrigins }),
    ...projectRoutes({ projects }),
    ...settingsRoutes({ settings, confirmPassword: (userId, password) => auth.confirmPassword(userId, password) }),
    ...policyRoutes({ policy }),
  )

  const billing = createBilling({ sql, logger, config })
  // plan limits: reserve at the meter step, settle with the statement that stores the batch.
  // COPY where it works (a PostgreSQL server) unless the batch repeats a stored id; one
  // multi-row INSERT … ON CONFLICT on the embedded database and for those batches
  const ingest = new IngestPipeline(
    billing.meter.storeWith({
      all: embedded ? undefined : (db, records, ctx) => copyRecords(db, ctx.projectId, records),
      newOnly: (tx, records, ctx) => insertRecords(tx, ctx.projectId, records),
    }),
    logger,
  )
  billing.meter.attach(ingest)
  const searchIndexer = new SearchIndexer(sql, logger, { lagMs: config.searchIndexLagMs, budgetMs: embedded ? 200 : 1_000 })
  searchIndexer.start()
  http.register(
    ...ingestRoutes({ sql, pipeline: ingest, projects: projectContexts, planLimitReset: () => billing.meter.reset() }),
    ...logsRoutes({ sql }),
    ...metricsRoutes({ sql }),
  )
  const incidents = createIncidents({ sql, logger, config, assertAccess: projects.assertAccess, verifyKey: (key) => keys.verify(key), rateLimit: (subject, perMinute) => limiter.check(subject, perMinute) })
  ingest.afterStore.push((stored, ctx) => incidents.service.afterStore(stored, ctx))
  settingsAfterCommit.push(async (projectId) => incidents.service.invalidateThresholds(projectId))
  http.register(...incidents.routes)
  http.register(...billing.routes)
  const remediation = createRemediations({ sql, logger, policy, incidents: incidents.service, ingest, assertAccess: projects.assertAccess })
  http.register(...remediation.routes)
  incidents.start()
  remediation.start()
  // the embedded database has one connection: every query waits for a chunk to finish
  const housekeeping = new Housekeeping(sql, logger, { chunkSize: embedded ? 1_000 : undefined })
  housekeeping.start()

  return {
    ingest,
    searchIndexer,
    incidents,
    billing,
    remediation,
    housekeeping,
    async stop() {
      await housekeeping.stop()
      await remediation.stop()
      await incidents.stop()
      await searchIndexer.stop()
      await keys.stop()
      await limiter.stop()
    },
  }
}
