import type { RejectedRecord } from '@llmguard/shared'
import type { Sql } from '../db/connect.js'
import { UNIQUE_VIOLATION, type Tx } from '../ingest/store.js'
import { ALL_NEW, type IngestContext, type IngestPipeline, type MeterStep, type ScoredRecord, type StoreStep } from '../ingest/pipeline.js'
import type { Logger } from '../logger.js'
import * as store from './store.js'
import { retryOnConflict } from '../db/retry.js'

/** The first instant of the UTC month of `at`, and of the next one. */
export function monthOf(at: Date): { start: Date; next: Date; key: string } {
  const start = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1))
  const next = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1))
  return { start, next, key: start.toISOString().slice(0, 10) }
}

interface Reservation {
  userId: string
  month: string
  granted: number
}

export interface UsageMeterDeps {
  sql: Sql
  logger: Logger
  /** Plan limits in force, or undefined with PLAN_LIMITS=off (usage is still counted). */
  limits: store.PlanLimitValues | undefined
  /** The clock that decides the usage month (injectable so tests can roll a month over). */
  now(): Date
}

/**
 * Exact monthly usage per user, enforced at the ingest pipeline's meter step.
 *
 * Invariant: once a batch is done (stored, failed or rejected), `usage_months.used` equals the
 * number of records stored for the user in that month; while batches are in flight it is that
 * number plus their reservations. So the stored count never passes the limit, however many
 * batches from however many of the user's projects arrive at once:
 * 1. meter: reserve the batch's size on the user-month row with one conditional UPDATE; the
 *    grant is capped at what is left. Records that are already stored (a retried batch) need no
 *    quota, so when the grant falls short they are let through as the duplicates they are;
 * 2. store: insert the batch and settle the reservation (give back what turned out to be
 *    duplicates of concurrent inserts) in one transaction, so the count and the rows commit
 *    together;
 * 3. anything that fails before the store gives the whole reservation back.
 */
export class UsageMeter {
  private readonly pending = new WeakMap<IngestContext, Reservation>()

  constructor(private readonly deps: UsageMeterDeps) {}

  /** When the current usage month ends (the reset time of a PLAN_LIMIT_EXCEEDED), and how far off that is. */
  reset(): { resetAt: Date; retryAfterSeconds: number } {
    const now = this.deps.now()
    const resetAt = monthOf(now).next
    return { resetAt, retryAfterSeconds: Math.max(1, Math.ceil((resetAt.getTime() - now.getTime()) / 1000)) }
  }

  readonly meter: MeterStep = async (records, ctx) => {
    const month = monthOf(this.deps.now())
    const granted = await store.reserve(this.deps.sql, ctx.ownerId, month.key, records.length, this.deps.limits)
    this.pending.set(ctx, { userId: ctx.ownerId, month: month.key, granted })
    if (granted === records.length) return { allowed: records, rejected: [] }
    const already = await store.storedIds(this.deps.sql, ctx.projectId, records.map((r) => r.record.id))
    const allowed: typeof records = []
    const rejected: RejectedRecord[] = []
    let left = granted
    for (const r of records) {
      if (already.has(r.record.id)) allowed.push(r)
      else if (left > 0) {
        allowed.push(r)
        left--
      } else {
        rejected.push({
          index: r.index,
          code: 'PLAN_LIMIT_EXCEEDED',
          message: `the monthly plan limit is reached; usage resets at ${month.next.toISOString()}`,
        })
      }
    }
    return { allowed, rejected }
  }

  /**
   * Makes the store step from a batch's two ways in (ingest/store.ts) and settles the batch's
   * reservation with it:
   * - `all` stores every record or none in one statement (COPY). A batch that gets it all is
   *   exactly what was reserved, so there is nothing to settle and it runs on its own. Used when
   *   the reservation covers the whole batch; a batch holding a stored id fails it with a unique
   *   violation and goes in the other way;
   * - `newOnly` skips stored ids: it runs in a transaction with the settlement (the records that
   *   turned out to be duplicates are given back), so the count and the rows commit together.
   */
  storeWith(write: {
    all?: (sql: Sql, records: ScoredRecord[], ctx: IngestContext) => Promise<void>
    newOnly: (tx: Tx, records: ScoredRecord[], ctx: IngestContext) => Promise<Set<string>>
  }): StoreStep {
    return async (records, ctx) => {
      const reservation = this.pending.get(ctx)
      this.pending.delete(ctx)
      const newOnly = () =>
        retryOnConflict(() =>
          this.deps.sql.begin(async (tx) => {
            const inserted = await write.newOnly(tx, records, ctx)
            if (reservation) await store.adjustUsage(tx, reservation.userId, reservation.month, inserted.size - reservation.granted)
            return inserted
          }),
        )
      const everyRecord = async (all: NonNullable<typeof write.all>): Promise<typeof ALL_NEW> => {
        await retryOnConflict(() => all(this.deps.sql, records, ctx))
        return ALL_NEW
      }
      const newOnlyOnUniqueViolation = (err: unknown) => {
        if ((err as { code?: string }).code !== UNIQUE_VIOLATION) throw err
        return newOnly()
      }
      try {
        if (write.all && (!reservation || reservation.granted === records.length)) return await everyRecord(write.all).catch(newOnlyOnUniqueViolation)
        return await newOnly()
      } catch (err) {
        if (reservation) await this.release(reservation)
        throw err
      }
    }
  }

  /** Makes a pipeline meter with this meter, and give back reservations of batches that fail before storing. */
  attach(pipeline: IngestPipeline): void {
    pipeline.meter = this.meter
    const ingest = pipeline.ingest.bind(pipeline)
    pipeline.ingest = async (raw, ctx) => {
      try {
        return await ingest(raw, ctx)
      } finally {
        // still pending: the batch never reached the store (everything rejected, or an annotator threw)
        const reservation = this.pending.get(ctx)
        if (reservation) {
          this.pending.delete(ctx)
          await this.release(reservation)
        }
      }
    }
  }

  private async release(r: Reservation): Promise<void> {
    if (r.granted === 0) return
    try {
      await store.adjustUsage(this.deps.sql, r.userId, r.month, -r.granted)
    } catch (err) {
      // the count stays too high (never too low): the user may be refused early, never overcharged past the limit
      this.deps.logger.error({ err, userId: r.userId, month: r.month, granted: r.granted }, 'could not give back a usage reservation')
    }
  }
}
