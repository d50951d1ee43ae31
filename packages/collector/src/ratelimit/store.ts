import type { Db } from '../db/connect.js'

export interface CountRow {
  subject: string
  second: number
  count: number
}

/** Records this instance as alive and returns how many instances are (itself included). */
export async function heartbeat(sql: Db, instanceId: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    with beat as (
      insert into collector_instances (id, seen_at) values (${instanceId}, now())
      on conflict (id) do update set seen_at = now()
    )
    select count(*)::int + 1 as n
    from collector_instances where seen_at > now() - interval '2 seconds' and id <> ${instanceId}`
  return row!.n
}

/** Writes this instance's absolute per-second counts (idempotent: each instance owns its rows). */
export async function pushCounts(sql: Db, instanceId: string, rows: CountRow[]): Promise<void> {
  if (rows.length === 0) return
  await sql`
    insert into rate_limit_counts ${sql(rows.map((r) => ({ ...r, instance_id: instanceId })), 'subject', 'second', 'instance_id', 'count')}
    on conflict (subject, second, instance_id) do update set count = excluded.count`
}

/** The other instances' counts per second for these subjects since `fromSecond`. */
export async function pullCounts(sql: Db, instanceId: string, subjects: string[], fromSecond: number): Promise<CountRow[]> {
  if (subjects.length === 0) return []
  return sql<CountRow[]>`
    select subject, second, sum(count)::int as count
    from rate_limit_counts
    where subject = any(${sql.array(subjects)}) and second >= ${fromSecond} and instance_id <> ${instanceId}
    group by subject, second`
}

export async function prune(sql: Db, beforeSecond: number): Promise<void> {
  await sql`delete from rate_limit_counts where second < ${beforeSecond}`
  await sql`delete from collector_instances where seen_at < now() - interval '1 minute'`
}

export async function leave(sql: Db, instanceId: string): Promise<void> {
  await sql`delete from collector_instances where id = ${instanceId}`
}
