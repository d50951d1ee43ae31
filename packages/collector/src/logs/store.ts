import { TOTAL_CAP, type LogDetail, type LogQuery, type LogResult, type Page } from '@llmguard/shared'
import type { Sql } from '../db/connect.js'

/** `%`, `_` and `\` are LIKE syntax: escape them so a search matches them literally. */
export function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
}

const RESULT_COLUMNS = (sql: Sql) => sql`
  r.id, r.prompt, r.response, r."timestamp", r.latency, r.model, r.risk_score::int as "riskScore",
  r.metadata, r.status, r.tokens, r.cost, r.user_id as "userId", r.risk_reasons as "riskReasons",
  r.policy_violation as "policyViolation", r.created_at as "createdAt"`

const SORT_COLUMN = { timestamp: 'timestamp', latency: 'latency', riskScore: 'risk_score', createdAt: 'created_at' } as const

type Row = Omit<LogResult, 'timestamp' | 'createdAt'> & { timestamp: Date; createdAt: Date }

const toResult = <R extends Row>(row: R) => ({ ...row, timestamp: row.timestamp.toISOString(), createdAt: row.createdAt.toISOString() })

/**
 * Every id that may match `pattern`, or null when there are more than TOTAL_CAP. Two disjoint
 * sources: the trigram index of llm_request_text for rows created before the indexer's
 * watermark, and a scan of the short tail created since (BRIN index on created_at). The text
 * index holds prompt and response joined, so this is a superset: callers recheck. That text is
 * stored case-folded (migration 0008) and matched with LIKE against the folded pattern: the
 * rows ILIKE finds, without folding each row read.
 */
async function searchCandidates(sql: Sql, projectId: string, pattern: string): Promise<string[] | null> {
  // an unnamed statement, planned for this term: a prepared one soon runs on a generic plan,
  // which cannot tell a rare term (read the trigram index) from a common one (read the table in
  // order and stop at the cap), and was 1.5-14x slower than the term's own plan
  const rows = await sql.unsafe<{ id: string }[]>(SEARCH_PROBE, [projectId, pattern], { prepare: false })
  return rows.length > TOTAL_CAP ? null : rows.map((r) => r.id)
}

/** The candidate probe: $1 the project, $2 the term as a LIKE pattern (bench:query explains it). */
export const SEARCH_PROBE = `
  select id from (
    (select t.id from llm_request_text t where t.project_id = $1 and t.body like lower($2) limit ${TOTAL_CAP + 1})
    union all
    (select x.id from llm_requests x
     where x.project_id = $1 and x.created_at >= (select indexed_before from search_index_state)
       and (x.prompt ilike $2 or x.response ilike $2)
     limit ${TOTAL_CAP + 1})
  ) candidates limit ${TOTAL_CAP + 1}`

/**
 * Searches a project's requests. A search term is answered one of two ways, whichever is
 * cheap for it: a rare term (at most TOTAL_CAP candidates from the trigram index) by fetching
 * those rows by primary key; a common one by walking the project's rows newest-first through
 * the (project_id, timestamp) index and stopping once the page is full — the index would hand
 * back most of the table, the walk finds 50 matches in the first few hundred rows.
 */
export async function searchLogs(sql: Sql, projectId: string, q: LogQuery): Promise<Page<LogResult>> {
  const where = [sql`r.project_id = ${projectId}`]
  const filters: string[] = []
  const add = (name: string, condition: (typeof where)[number]) => {
    filters.push(name)
    where.push(condition)
  }
  if (q.model) add('model', sql`r.model = ${q.model}`)
  if (q.minRiskScore !== undefined) add('minRiskScore', sql`r.risk_score >= ${q.minRiskScore}`)
  if (q.maxRiskScore !== undefined) add('maxRiskScore', sql`r.risk_score <= ${q.maxRiskScore}`)
  // bound as text, read by PostgreSQL: postgres.js would send a timestamptz parameter through a
  // JavaScript Date, cutting the microseconds the rows are stored with
  if (q.startDate) add('startDate', sql`r."timestamp" >= ${q.startDate}::text::timestamptz`)
  if (q.endDate) add('endDate', sql`r."timestamp" < ${q.endDate}::text::timestamptz`)
  if (q.createdFrom) add('createdFrom', sql`r.created_at >= ${q.createdFrom}::text::timestamptz`)
  if (q.status) add('status', sql`r.status = ${q.status}`)
  if (q.userId) add('userId', sql`r.user_id = ${q.userId}`)
  if (q.policyViolation) add('policyViolation', q.policyViolation === 'true' ? sql`r.policy_violation is not null` : sql`r.policy_violation is null`)
  // more matches than the cap: the total is known to be capped without counting, unless other
  // filters may thin them out
  let knownCapped = false
  if (q.search) {
    const pattern = likePattern(q.search)
    where.push(sql`(r.prompt ilike ${pattern} or r.response ilike ${pattern})`)
    const candidates = await searchCandidates(sql, projectId, pattern)
    if (candidates) where.push(sql`r.id = any(${candidates}::uuid[])`)
    else knownCapped = filters.length === 0
  }
  const condition = where.reduce((acc, part) => sql`${acc} and ${part}`)
  const column = sql(SORT_COLUMN[q.sortBy])
  // the tie-break runs against the sort direction, as in llm_requests_project_time_idx
  // (project_id, timestamp desc, id): a newest-first page is a plain forward index scan. By
  // arrival, the rows of one batch share createdAt: they follow in call order first
  const order = q.sortOrder === 'asc' ? sql`asc` : sql`desc`
  const tieBreak = q.sortOrder === 'asc' ? sql`desc` : sql`asc`
  const offset = (q.page - 1) * q.limit
  const [rows, count] = await Promise.all([
    sql<Row[]>`
      select ${RESULT_COLUMNS(sql)} from llm_requests r
      where ${condition}
      order by r.${column} ${order}, ${q.sortBy === 'createdAt' ? sql`r."timestamp" ${order},` : sql``} r.id ${tieBreak}
      limit ${q.limit} offset ${offset}`,
    knownCapped
      ? Promise.resolve(TOTAL_CAP + 1)
      : sql<{ n: number }[]>`
          select count(*)::int as n from (select 1 from llm_requests r where ${condition} limit ${TOTAL_CAP + 1}) capped`.then(
          ([row]) => row!.n,
        ),
  ])
  return {
    items: rows.map(toResult),
    page: q.page,
    limit: q.limit,
    total: Math.min(count, TOTAL_CAP),
    totalCapped: count > TOTAL_CAP,
  }
}

export async function getLog(sql: Sql, projectId: string, id: string): Promise<LogDetail | undefined> {
  const [row] = await sql<(Row & Omit<LogDetail, 'timestamp' | 'createdAt'>)[]>`
    select ${RESULT_COLUMNS(sql)}, r.project_id as "projectId", r.requested_model as "requestedModel",
      r.endpoint, r.prompt_tokens as "promptTokens", r.completion_tokens as "completionTokens",
      r.cached_tokens as "cachedTokens", r.reasoning_tokens as "reasoningTokens",
      r.time_to_first_token as "timeToFirstToken", r.stream, r.error
    from llm_requests r where r.project_id = ${projectId} and r.id = ${id}`
  if (!row) return undefined
  return toResult(row)
}
