import type { Sql } from '../db/connect.js'
import type { IngestResult } from '@llmguard/shared'
import type { ScoredRecord } from './pipeline.js'

/** Log-bucket width of the latency histograms: 5 % (see metrics/percentiles.ts). */
export const LATENCY_BUCKET_BASE = 1.05

/**
 * Stores a batch and maintains the rollups in one statement, one round trip: the rows go as
 * one JSON parameter (no 65,535-parameter ceiling, and COPY hangs on the embedded database),
 * duplicates of stored ids are skipped by the primary key (also when batches race), and the
 * rollups are upserted from exactly the rows that were inserted — grouped first, since one
 * upsert statement may not touch a row twice. Rows are taken in key order, so concurrent
 * batches lock in the same order (the callers still retry a deadlock victim: db/retry.ts).
 * Returns the ids that were new.
 */
export async function insertRecords(sql: Sql, projectId: string, records: ScoredRecord[]): Promise<Set<string>> {
  const rows = records.map((r) => ({
    id: r.id,
    prompt: r.prompt,
    response: r.response,
    model: r.model,
    requested_model: r.requestedModel ?? null,
    endpoint: r.endpoint ?? null,
    latency: r.latency,
    time_to_first_token: r.timeToFirstToken ?? null,
    tokens: r.tokens,
    prompt_tokens: r.promptTokens ?? null,
    completion_tokens: r.completionTokens ?? null,
    cached_tokens: r.cachedTokens ?? null,
    reasoning_tokens: r.reasoningTokens ?? null,
    status: r.status,
    error: r.error ?? null,
    stream: r.stream ?? null,
    user_id: r.userId ?? null,
    metadata: r.metadata ?? {},
    risk_score: r.riskScore,
    risk_reasons: r.riskReasons,
    cost: r.cost,
    policy_violation: r.policyViolation,
    timestamp: r.timestamp,
  }))
  const inserted = await sql<{ id: string }[]>`
    with input as (
      select * from json_to_recordset(${sql.json(rows as never)}::json) as x(
        id uuid, prompt text, response text, model text, requested_model text, endpoint text,
        latency integer, time_to_first_token integer, tokens integer, prompt_tokens integer,
        completion_tokens integer, cached_tokens integer, reasoning_tokens integer, status text,
        error jsonb, stream boolean, user_id text, metadata jsonb, risk_score smallint,
        risk_reasons jsonb, cost double precision, policy_violation jsonb, "timestamp" timestamptz
      )
    ),
    ins as (
      insert into llm_requests (
        project_id, id, prompt, response, model, requested_model, endpoint, latency,
        time_to_first_token, tokens, prompt_tokens, completion_tokens, cached_tokens,
        reasoning_tokens, status, error, stream, user_id, metadata, risk_score, risk_reasons,
        cost, policy_violation, "timestamp"
      )
      select ${projectId}::uuid, id, prompt, response, model, requested_model, endpoint, latency,
        time_to_first_token, tokens, prompt_tokens, completion_tokens, cached_tokens,
        reasoning_tokens, status, error, stream, user_id, metadata, risk_score, risk_reasons,
        cost, policy_violation, "timestamp"
      from input
      order by id
      on conflict (project_id, id) do nothing
      returning id, model, status, latency, tokens, cost, "timestamp"
    ),
    rollup as (
      insert into request_rollups as r (project_id, hour, model, requests, errors, latency_sum, tokens, cost_sum, unpriced)
      select ${projectId}::uuid, date_trunc('hour', "timestamp"), model, count(*),
        count(*) filter (where status = 'error'), sum(latency), sum(tokens),
        coalesce(sum(cost::numeric), 0), count(*) filter (where cost is null)
      from ins group by 2, 3
      -- one lock order for every batch: concurrent batches of a project otherwise deadlock
      order by 2, 3
      on conflict (project_id, hour, model) do update set
        requests = r.requests + excluded.requests,
        errors = r.errors + excluded.errors,
        latency_sum = r.latency_sum + excluded.latency_sum,
        tokens = r.tokens + excluded.tokens,
        cost_sum = r.cost_sum + excluded.cost_sum,
        unpriced = r.unpriced + excluded.unpriced
    ),
    histogram as (
      insert into latency_histograms as h (project_id, day, bucket, n)
      select ${projectId}::uuid, "timestamp"::date, floor(ln(latency + 1) / ln(${LATENCY_BUCKET_BASE}))::smallint, count(*)
      from ins group by 2, 3
      order by 2, 3
      on conflict (project_id, day, bucket) do update set n = h.n + excluded.n
    )
    select id from ins`
  return new Set(inserted.map((r) => r.id))
}

/** The stored result of one record (a repeated single POST answers with it). */
export async function storedResult(sql: Sql, projectId: string, id: string): Promise<IngestResult | undefined> {
  const [row] = await sql<IngestResult[]>`
    select id, risk_score::int as "riskScore", risk_reasons as "riskReasons", cost
    from llm_requests where project_id = ${projectId} and id = ${id}`
  return row
}
