import type postgres from 'postgres'
import type { Db, Sql } from '../db/connect.js'

/**
 * Runs `work` for (job, period) at most once across every instance sharing the database.
 * A transaction-scoped advisory lock picks one leader (a session lock taken through a pool can
 * be released on another connection; the xact lock ends with the transaction on its own), and
 * the (job, period) row in job_runs, inserted in the same transaction, makes a later instance
 * or a retry skip a period that already ran. If `work` throws, both roll back and the next
 * tick tries the period again. `work` must use the transaction it is given (on the embedded
 * database the pool has one connection).
 */
export async function runOncePerPeriod<T>(sql: Sql, job: string, period: string, work: (tx: postgres.TransactionSql<{}>) => Promise<T>): Promise<{ ran: true; result: T } | { ran: false; reason: 'locked' | 'done' }> {
  return sql.begin(async (tx) => {
    const [lock] = await tx<{ locked: boolean }[]>`select pg_try_advisory_xact_lock(hashtext(${`llmguard:job:${job}`})) as locked`
    if (!lock!.locked) return { ran: false as const, reason: 'locked' as const }
    const inserted = await tx`insert into job_runs (job, period) values (${job}, ${period}) on conflict do nothing returning job`
    if (!inserted.length) return { ran: false as const, reason: 'done' as const }
    const result = await work(tx)
    await tx`update job_runs set finished_at = now() where job = ${job} and period = ${period}`
    return { ran: true as const, result }
  }) as Promise<{ ran: true; result: T } | { ran: false; reason: 'locked' | 'done' }>
}

/**
 * Runs `work` on at most one instance at a time, for jobs whose work is idempotent row by row
 * and runs too often for a job_runs row per period (the minute-by-minute remediation revert).
 * The transaction-scoped advisory lock picks the leader; the others skip this tick.
 */
export async function runExclusive<T>(sql: Sql, job: string, work: (tx: Db) => Promise<T>): Promise<{ ran: true; result: T } | { ran: false; reason: 'locked' }> {
  return sql.begin(async (tx) => {
    const [lock] = await tx<{ locked: boolean }[]>`select pg_try_advisory_xact_lock(hashtext(${`llmguard:job:${job}`})) as locked`
    if (!lock!.locked) return { ran: false as const, reason: 'locked' as const }
    return { ran: true as const, result: await work(tx) }
  }) as Promise<{ ran: true; result: T } | { ran: false; reason: 'locked' }>
}
