import { TOTAL_CAP, type LogDetail, type LogQuery, type LogResult, type Page } from '@llmguard/shared'
import type { Sql } from '../db/connect.js'

/** `%`, `_` and `\` are LIKE syntax: escape them so a search matches them literally. */
export function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
}

const RESULT_COLUMNS = (sql: Sql) => sql`
  r.id, r.prompt, r.response, r."timestamp", r.latency, r.model, r.risk_score::int as "riskScore",
  r.metadata, r.status, r.tokens, r.cost, r.user_id as "userId", r.risk_reasons as "riskReasons",
  r.policy_violation as "policyViolation"`

const SORT_COLUMN = { timestamp: 'timestamp', latency: 'latency', riskScore: 'risk_score' } as const

type Row = Omit<LogResult, 'timestamp'> & { timestamp: Date }

const toResult = (row: Row): LogResult => ({ ...row, timestamp: row.timestamp.toISOString() })

/**
 * Searches a project's requests. With `search`, candidates come from two disjoint sets: the
 * trigram index of llm_request_text for rows created before the indexer's watermark, and a
 * scan of the rows created since (a short tail, found through the BRIN index on created_at).
 * Candidates are then rechecked against prompt and response themselves, so a match never
 * straddles the two.
 */
export async function searchLogs(sql: Sql, projectId: string, q: LogQuery): Promise<Page<LogResult>> {
  const where = [sql`r.project_id = ${projectId}`]
  if (q.model) where.push(sql`r.model = ${q.model}`)
  if (q.minRiskScore !== undefined) where.push(sql`r.risk_score >= ${q.minRiskScore}`)
  if (q.maxRiskScore !== undefined) where.push(sql`r.risk_score <= ${q.maxRiskScore}`)
  if (q.startDate) where.push(sql`r."timestamp" >= ${q.startDate}`)
  if (q.endDate) where.push(sql`r."timestamp" < ${q.endDate}`)
  if (q.status) where.push(sql`r.status = ${q.status}`)
  if (q.userId) where.push(sql`r.user_id = ${q.userId}`)
  if (q.policyViolation) where.push(q.policyViolation === 'true' ? sql`r.policy_violation is not null` : sql`r.policy_violation is null`)
  let hits = sql``
  if (q.search) {
    const pattern = likePattern(q.search)
    where.push(sql`(r.prompt ilike ${pattern} or r.response ilike ${pattern})`)
    hits = sql`
      with watermark as (select indexed_before from search_index_state),
      hits as (
        select t.id from llm_request_text t
        where t.project_id = ${projectId} and t.body ilike ${pattern}
        union all
        select x.id from llm_requests x
        where x.project_id = ${projectId} and x.created_at >= (select indexed_before from watermark)
          and (x.prompt ilike ${pattern} or x.response ilike ${pattern})
      )`
    where.push(sql`r.id in (select id from hits)`)
  }
  const condition = where.reduce((acc, part) => sql`${acc} and ${part}`)
  const column = sql(SORT_COLUMN[q.sortBy])
  const order = q.sortOrder === 'asc' ? sql`asc` : sql`desc`
  const offset = (q.page - 1) * q.limit
  const [rows, [count]] = await Promise.all([
    sql<Row[]>`${hits}
      select ${RESULT_COLUMNS(sql)} from llm_requests r
      where ${condition}
      order by r.${column} ${order}, r.id ${order}
      limit ${q.limit} offset ${offset}`,
    sql<{ n: number }[]>`${hits}
      select count(*)::int as n from (select 1 from llm_requests r where ${condition} limit ${TOTAL_CAP + 1}) capped`,
  ])
  const total = count!.n
  return {
    items: rows.map(toResult),
    page: q.page,
    limit: q.limit,
    total: Math.min(total, TOTAL_CAP),
    totalCapped: total > TOTAL_CAP,
  }
}

export async function getLog(sql: Sql, projectId: string, id: string): Promise<LogDetail | undefined> {
  const [row] = await sql<(Row & Omit<LogDetail, 'timestamp' | 'createdAt'> & { createdAt: Date })[]>`
    select ${RESULT_COLUMNS(sql)}, r.project_id as "projectId", r.requested_model as "requestedModel",
      r.endpoint, r.prompt_tokens as "promptTokens", r.completion_tokens as "completionTokens",
      r.cached_tokens as "cachedTokens", r.reasoning_tokens as "reasoningTokens",
      r.time_to_first_token as "timeToFirstToken", r.stream, r.error, r.created_at as "createdAt"
    from llm_requests r where r.project_id = ${projectId} and r.id = ${id}`
  if (!row) return undefined
  return { ...row, timestamp: row.timestamp.toISOString(), createdAt: row.createdAt.toISOString() }
}
