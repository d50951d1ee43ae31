import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type postgres from 'postgres'
import type { Sql } from '../db/connect.js'
import type { IngestResult } from '@llmguard/shared'
import type { ScoredRecord } from './pipeline.js'

/** Log-bucket width of the latency histograms: 5 % (see metrics/percentiles.ts). */
export const LATENCY_BUCKET_BASE = 1.05

/**
 * How a batch reaches `llm_requests`:
 * - `copy` (PostgreSQL server): the batch goes in by `COPY`, whose batched heap and index
 *   writes cost PostgreSQL a third of the CPU of an `INSERT … SELECT` of the same rows, then the
 *   rollups are upserted from those rows. A batch holding an id that is stored already (a
 *   retry, or racing batches) fails on the primary key with `UNIQUE_VIOLATION`, which aborts
 *   the transaction: the caller runs it again in the insert mode (a savepoint around the COPY
 *   would spare that, but costs every batch a subtransaction: ~15 % more database CPU);
 * - `insert` (the embedded database, where COPY hangs, and that retry): one multi-row
 *   `INSERT … ON CONFLICT DO NOTHING` with the rollups in the same statement.
 */
export type WriteMode = 'copy' | 'insert'

/** A transaction: the copy mode's COPY and rollups must commit together. */
export type Tx = postgres.TransactionSql<{}>

/** The SQLSTATE a COPY of a batch holding a stored id fails with: run it again in the insert mode. */
export const UNIQUE_VIOLATION = '23505'

/** The stored columns but the two the database fills in (seq, created_at), in COPY order. */
const COLUMNS = [
  'project_id', 'id', 'prompt', 'response', 'model', 'requested_model', 'endpoint', 'latency',
  'time_to_first_token', 'tokens', 'prompt_tokens', 'completion_tokens', 'cached_tokens',
  'reasoning_tokens', 'status', 'error', 'stream', 'user_id', 'metadata', 'risk_score',
  'risk_reasons', 'cost', 'policy_violation', 'timestamp',
] as const
const COPY_STATEMENT = `copy llm_requests (${COLUMNS.map((c) => `"${c}"`).join(', ')}) from stdin`

/**
 * Stores a batch and maintains the rollups from exactly the rows that were new. In the insert
 * mode duplicates of stored ids are skipped by the primary key, also when batches race; in the
 * copy mode they fail the transaction (see WriteMode). Returns the new ids.
 */
export async function insertRecords(tx: Tx, projectId: string, records: ScoredRecord[], mode: WriteMode): Promise<Set<string>> {
  if (mode === 'insert' || !records.length) return insertStatement(tx, projectId, records)
  await copyRows(tx, projectId, records)
  await upsertRollups(tx, projectId, records)
  return new Set(records.map((r) => r.id))
}

async function copyRows(tx: Tx, projectId: string, records: ScoredRecord[]): Promise<void> {
  const writable = await tx.unsafe(COPY_STATEMENT).writable()
  await pipeline(Readable.from([copyText(projectId, records)]), writable)
}

/** The rows in COPY's text format: tab-separated, `\N` for null, backslash escapes. */
export function copyText(projectId: string, records: ScoredRecord[]): string {
  // string concatenation: V8 builds ropes, flattened once when the text is encoded
  let out = ''
  for (const r of records) {
    out += projectId + '\t' + r.id + '\t' + text(r.prompt) + '\t' + text(r.response) + '\t' + text(r.model) + '\t' +
      nullableText(r.requestedModel) + '\t' + nullableText(r.endpoint) + '\t' + r.latency + '\t' +
      nullableNumber(r.timeToFirstToken) + '\t' + r.tokens + '\t' + nullableNumber(r.promptTokens) + '\t' +
      nullableNumber(r.completionTokens) + '\t' + nullableNumber(r.cachedTokens) + '\t' +
      nullableNumber(r.reasoningTokens) + '\t' + r.status + '\t' + json(r.error) + '\t' +
      (r.stream === undefined || r.stream === null ? NULL : r.stream ? 't' : 'f') + '\t' + nullableText(r.userId) + '\t' +
      json(r.metadata ?? {}) + '\t' + r.riskScore + '\t' + json(r.riskReasons) + '\t' + nullableNumber(r.cost) + '\t' +
      json(r.policyViolation) + '\t' + r.timestamp + '\n'
  }
  return out
}

const NULL = '\\N'
const SPECIAL = /[\\\t\n\r]/

function text(s: string): string {
  if (!SPECIAL.test(s)) return s
  return s.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('\r', '\\r').replaceAll('\t', '\\t')
}

function nullableText(s: string | null | undefined): string {
  return s === null || s === undefined ? NULL : text(s)
}

function nullableNumber(n: number | null | undefined): string {
  return n === null || n === undefined ? NULL : String(n)
}

/** JSON text holds no raw tab, newline or carriage return (they are escaped): only backslashes need doubling. */
function json(v: unknown): string {
  if (v === null || v === undefined) return NULL
  const s = JSON.stringify(v)
  return s.includes('\\') ? s.replaceAll('\\', '\\\\') : s
}

/**
 * The rollups of rows just written. The sums are taken by PostgreSQL (cost as numeric), as the
 * insert statement does, so both modes give the same totals. Groups are upserted in key order:
 * concurrent batches of a project lock the shared rows in one order and cannot deadlock.
 */
async function upsertRollups(tx: Tx, projectId: string, records: ScoredRecord[]): Promise<void> {
  const rows = records.map((r) => ({ model: r.model, status: r.status, latency: r.latency, tokens: r.tokens, cost: r.cost, timestamp: r.timestamp }))
  await tx`
    with ins as (
      select * from json_to_recordset(${tx.json(rows as never)}::json)
        as x(model text, status text, latency integer, tokens integer, cost double precision, "timestamp" timestamptz)
    ),
    ${rollupStatements(tx, projectId)}
    select 1`
}

/** The two rollup upserts as CTEs reading the new rows from a CTE named `ins`. */
function rollupStatements(tx: Tx, projectId: string) {
  return tx`
    rollup as (
      insert into request_rollups as r (project_id, hour, model, requests, errors, latency_sum, tokens, cost_sum, unpriced)
      select ${projectId}::uuid, date_trunc('hour', "timestamp"), model, count(*),
        count(*) filter (where status = 'error'), sum(latency), sum(tokens),
        coalesce(sum(cost::numeric), 0), count(*) filter (where cost is null)
      from ins group by 2, 3
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
    )`
}

/**
 * The insert mode: one statement, one round trip. The rows go as one JSON parameter (no
 * 65,535-parameter ceiling), the rollups are upserted from the rows the insert returned (the
 * ones that were new), and rows are taken in key order so racing batches lock in one order.
 */
async function insertStatement(tx: Tx, projectId: string, records: ScoredRecord[]): Promise<Set<string>> {
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
  const inserted = await tx<{ id: string }[]>`
    with input as (
      select * from json_to_recordset(${tx.json(rows as never)}::json) as x(
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
    ${rollupStatements(tx, projectId)}
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
