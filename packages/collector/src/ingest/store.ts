import type postgres from 'postgres'
import type { Db, Sql } from '../db/connect.js'
import type { IngestResult } from '@llmguard/shared'
import type { ScoredRecord } from './pipeline.js'
import { COPY_COLUMNS, copyBinaryData } from './copy-binary.js'

/**
 * Log-bucket width of the latency histograms: 5 % (see metrics/percentiles.ts). The rollup
 * trigger (migration 0007) buckets with the same base.
 */
export const LATENCY_BUCKET_BASE = 1.05

/*
 * How a batch reaches `llm_requests`. Both ways are one statement; the rollups
 * (`request_rollups`, `latency_histograms`) are maintained by a trigger on the table from the
 * rows the statement inserted (migration 0007), in the same transaction.
 * - `copyRecords` (PostgreSQL server): `COPY` in the binary format (copy-binary.ts), whose
 *   batched heap and index writes cost PostgreSQL a third of the CPU of an `INSERT … SELECT`
 *   of the same rows. It stores every record or none: a batch holding an id that is stored already (a retry, or racing batches)
 *   fails on the primary key with `UNIQUE_VIOLATION`, and goes in by `insertRecords` instead.
 *   Nothing else needs to commit with it, so it runs as its own transaction: the rollup rows
 *   it locks are released when the statement ends.
 * - `insertRecords` (the embedded database, where COPY hangs, and those batches): one
 *   multi-row `INSERT … ON CONFLICT DO NOTHING` that skips stored ids.
 */

/** A transaction (the insert path settles plan usage in the one that stores the batch). */
export type Tx = postgres.TransactionSql<{}>

/** The SQLSTATE a COPY of a batch holding a stored id fails with: store it by `insertRecords`. */
export const UNIQUE_VIOLATION = '23505'

/** The COPY of a batch into `llm_requests`, in the binary format (copy-binary.ts). */
export const COPY_STATEMENT = `copy llm_requests (${COPY_COLUMNS.map((c) => `"${c}"`).join(', ')}) from stdin (format binary)`

/** Stores every record of a batch by COPY, or fails with UNIQUE_VIOLATION and stores none. */
export async function copyRecords(sql: Sql, projectId: string, records: ScoredRecord[]): Promise<void> {
  if (!records.length) return
  const data = copyBinaryData(projectId, records)
  // A connection of its own: the pool queues a query behind a busy connection's, so a COPY
  // could wait behind a slow query, and queries behind a COPY waiting on a rollup row's lock.
  const conn = await sql.reserve()
  try {
    // The data and the end of the COPY go out in the same write as the statement (`copyFrom`, a
    // patch of the project's to postgres.js). With a writable stream PostgreSQL waited for this
    // event loop twice a batch, for the data and then for CopyDone, while it parsed other batches.
    await conn.unsafe(COPY_STATEMENT).copyFrom(data)
  } finally {
    conn.release()
  }
}

/**
 * Stores the records whose ids are new, skipping stored ones (also when batches race), in one
 * statement: the rows go as one JSON parameter (no 65,535-parameter ceiling), taken in key
 * order so racing batches lock in one order. Returns the new ids.
 */
export async function insertRecords(db: Db, projectId: string, records: ScoredRecord[]): Promise<Set<string>> {
  if (!records.length) return new Set()
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
  const inserted = await db<{ id: string }[]>`
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
    from json_to_recordset(${db.json(rows as never)}::json) as x(
      id uuid, prompt text, response text, model text, requested_model text, endpoint text,
      latency integer, time_to_first_token integer, tokens integer, prompt_tokens integer,
      completion_tokens integer, cached_tokens integer, reasoning_tokens integer, status text,
      error jsonb, stream boolean, user_id text, metadata jsonb, risk_score smallint,
      risk_reasons jsonb, cost double precision, policy_violation jsonb, "timestamp" timestamptz
    )
    order by id
    on conflict (project_id, id) do nothing
    returning id`
  return new Set(inserted.map((r) => r.id))
}

/** The stored result of one record (a repeated single POST answers with it). */
export async function storedResult(sql: Sql, projectId: string, id: string): Promise<IngestResult | undefined> {
  const [row] = await sql<IngestResult[]>`
    select id, risk_score::int as "riskScore", risk_reasons as "riskReasons", cost
    from llm_requests where project_id = ${projectId} and id = ${id}`
  return row
}
