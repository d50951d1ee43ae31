import type { Db, Sql } from '../db/connect.js'
import type { Logger } from '../logger.js'

export const HOUSEKEEPING_JOB = 'housekeeping'
const HOUR_MS = 3_600_000
/** Rows deleted per statement: each chunk is its own short transaction, whatever the backlog. */
export const HOUSEKEEPING_CHUNK = 5_000

/**
 * How many days a bookkeeping row is kept (past its `received_at`, `at`, `started_at`, or for
 * refresh tokens past `expires_at`), each longer than anything that still reads the row:
 */
export const RETENTION_DAYS = {
  // Stripe retries a delivery for up to 3 days, and its events API (what a manual resend or a
  // replay script works from) reaches 30 days back: an id pruned earlier would let a resent
  // event be applied twice. Past that, billing still ignores an event older than the state it
  // applied last (billing_accounts.stripe_event_at).
  stripe_events: 35,
  // a delivery whose own time (signature `t` or the payload's `date`) is more than 5 minutes
  // off is refused before its id is looked at, so the id guards against replays within minutes;
  // a month also covers a relay that re-signs its retries (`t` is then the relay's)
  datadog_events: 30,
  // the anomaly job reads its last 24 hours of periods and the oldest period it finished
  // (which only says "it ran before"): the newest finished period of each job is kept forever
  job_runs: 30,
  // the RCA budget counts the last 24 hours (incidents/store.ts spendRcaCall); a day more is margin
  rca_calls: 2,
  // an expired refresh token fails the JWT check before its row is looked up (auth/tokens.ts),
  // so a rotated or revoked row matters only until it expires; a day covers clock skew between
  // the instances and the database. Pruned by expiry only: a rotated token presented again
  // before then must still revoke its family, and a revoked row is what ends its session's
  // access tokens (auth/store.ts tokenHolder), which live 15 minutes, far less than the
  // family's newest refresh token
  refresh_tokens: 1,
  // an address counts as the owner's for the login limits for 30 days after a login from it
  // (auth/service.ts LOGIN_LIMITS.knownAddressDays)
  login_known_addresses: 30,
  // an hour's anomaly counted (incidents/store.ts claimAnomalyHours): the job looks back a day at
  // most, the on-demand detect at the last complete hour
  anomaly_hours: 2,
} as const

export type HousekeptTable = keyof typeof RETENTION_DAYS

type Prune = (db: Db, days: number, limit: number) => Promise<number>

/**
 * Deletes up to `limit` rows whose `column` is past retention, oldest first, and returns how
 * many. `skip locked`: two pruners (an overlong run and the next period's) take different rows
 * instead of queueing; a row someone else holds is taken next time. Each reads its age index;
 * the plan on PostgreSQL 15 (200k rows, the others alike):
 *   Delete → InitPlan: Limit → LockRows → Index Scan using stripe_events_received_idx
 *   (Index Cond: received_at < now() - '35 days'); then Tid Scan (ctid = ANY ($1))
 */
const byAge =
  (table: HousekeptTable, column: string): Prune =>
  async (db, days, limit) =>
    (await db`delete from ${db(table)} where ctid = any(array(
      select ctid from ${db(table)} where ${db(column)} < now() - ${days} * interval '1 day'
      order by ${db(column)} limit ${limit} for update skip locked))`).count

const PRUNE: Record<HousekeptTable, Prune> = {
  stripe_events: byAge('stripe_events', 'received_at'),
  datadog_events: byAge('datadog_events', 'received_at'),
  // no index on started_at: a seq scan of a table of a couple of rows an hour (0014_housekeeping.sql);
  // the newest period of each job is found through the primary key
  job_runs: async (db, days, limit) =>
    (await db`delete from job_runs where ctid = any(array(
      select r.ctid from job_runs r
      where r.started_at < now() - ${days} * interval '1 day'
        and r.period < (select max(l.period) from job_runs l where l.job = r.job and l.finished_at is not null)
      limit ${limit} for update skip locked))`).count,
  rca_calls: byAge('rca_calls', 'at'),
  login_known_addresses: byAge('login_known_addresses', 'last_login_at'),
  refresh_tokens: byAge('refresh_tokens', 'expires_at'),
  anomaly_hours: byAge('anomaly_hours', 'hour'),
}

export interface HousekeepingOptions {
  /** The first run after start (default a minute: start-up and migrations have settled). */
  firstDelayMs?: number
  intervalMs?: number
  chunkSize?: number
  /** Names the period (tests move it on). */
  clock?: () => Date
}

export type HousekeepingRun =
  | {
      ran: true
      /** Rows deleted per table (tables with none left out). */
      pruned: Partial<Record<HousekeptTable, number>>
      /** Tables whose pruning failed (logged); they are tried again next period. */
      failed: HousekeptTable[]
      /** False when stop() cut the run short. */
      complete: boolean
    }
  | { ran: false; reason: 'done' }

/**
 * Deletes bookkeeping rows nothing reads or dedups against any more (RETENTION_DAYS), once an
 * hour across all instances. Never user data (requests, incidents, remediations, billing).
 */
export class Housekeeping {
  private timer?: NodeJS.Timeout
  private running?: Promise<unknown>
  private stopped = false
  private readonly firstDelayMs: number
  private readonly intervalMs: number
  private readonly chunkSize: number
  private readonly clock: () => Date

  constructor(
    private readonly sql: Sql,
    private readonly logger: Logger,
    options: HousekeepingOptions = {},
  ) {
    this.firstDelayMs = options.firstDelayMs ?? 60_000
    this.intervalMs = options.intervalMs ?? HOUR_MS
    this.chunkSize = options.chunkSize ?? HOUSEKEEPING_CHUNK
    this.clock = options.clock ?? (() => new Date())
  }

  start(): void {
    this.stopped = false
    this.schedule(this.firstDelayMs)
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.running = this.runOnce()
        .catch((err: unknown) => this.logger.error({ err }, 'housekeeping failed'))
        .finally(() => {
          this.running = undefined
          if (!this.stopped) this.schedule(this.intervalMs)
        })
    }, delayMs)
    this.timer.unref()
  }

  /**
   * Prunes every table, unless another instance (or an earlier tick) has this hour already.
   * Not runOncePerPeriod: its work runs inside its transaction, and pruning a backlog must not
   * be one long transaction. The (job, period) row alone elects the runner (the insert is
   * atomic); each chunk then commits on its own. A run that dies half-way leaves the rest to
   * the next hour, and finished_at unset.
   */
  async runOnce(now = this.clock()): Promise<HousekeepingRun> {
    const period = new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS).toISOString()
    const claimed = await this.sql`insert into job_runs (job, period) values (${HOUSEKEEPING_JOB}, ${period}) on conflict do nothing returning job`
    if (!claimed.length) return { ran: false, reason: 'done' }
    const pruned: Partial<Record<HousekeptTable, number>> = {}
    const failed: HousekeptTable[] = []
    for (const table of Object.keys(RETENTION_DAYS) as HousekeptTable[]) {
      if (this.stopped) break
      try {
        await this.prune(table, pruned)
      } catch (err) {
        failed.push(table)
        this.logger.error({ err, table }, 'housekeeping: pruning a table failed')
      }
    }
    const complete = !this.stopped
    if (complete && !failed.length) await this.sql`update job_runs set finished_at = now() where job = ${HOUSEKEEPING_JOB} and period = ${period}`
    if (Object.keys(pruned).length) this.logger.info({ period, pruned }, 'housekeeping pruned old rows')
    return { ran: true, pruned, failed, complete }
  }

  /** Chunk after chunk until one comes back short; counts into `pruned` as it goes (a later chunk may fail). */
  private async prune(table: HousekeptTable, pruned: Partial<Record<HousekeptTable, number>>): Promise<void> {
    while (!this.stopped) {
      const n = await PRUNE[table](this.sql, RETENTION_DAYS[table], this.chunkSize)
      if (n) pruned[table] = (pruned[table] ?? 0) + n
      if (n < this.chunkSize) return
    }
  }
}
