import { TOTAL_CAP, type Page } from '@llmguard/shared'
import type { Db } from './connect.js'

/**
 * The list shape of every collection route. `total` is exact up to TOTAL_CAP and reported as
 * TOTAL_CAP past it, so counting never scans more than TOTAL_CAP + 1 rows.
 */
export function toPage<T>(items: T[], page: number, limit: number, counted: number): Page<T> {
  return { items, page, limit, total: Math.min(counted, TOTAL_CAP), totalCapped: counted > TOTAL_CAP }
}

/** Counts at most TOTAL_CAP + 1 rows of a fragment like sql`select 1 from t where …`. */
export async function countCapped(sql: Db, rows: ReturnType<Db>): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from (${rows} limit ${TOTAL_CAP + 1}) capped`
  return row!.n
}
