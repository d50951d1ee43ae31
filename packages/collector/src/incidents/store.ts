import type { Incident, IncidentQuery, IncidentRca, IncidentSeverity, IncidentStatus, IncidentType, Page, RelatedRequest } from '@llmguard/shared'
import type { Db } from '../db/connect.js'
import { countCapped, toPage } from '../db/page.js'

/** What a detector reports: an incident to open, or to count again when one is unresolved. */
export interface Signal {
  projectId: string
  type: IncidentType
  key: string
  severity: IncidentSeverity
  title: string
  /** How many times it happened in this evaluation (adds to `occurrences`). */
  count: number
  at: Date
  /** Merged into the incident's metadata (latest values win). */
  metadata: Record<string, unknown>
}

interface Row {
  id: string
  projectId: string
  type: IncidentType
  key: string
  status: IncidentStatus
  severity: IncidentSeverity
  title: string
  occurrences: number
  firstSeenAt: Date
  lastSeenAt: Date
  acknowledgedAt: Date | null
  resolvedAt: Date | null
  metadata: Record<string, unknown>
  rca: IncidentRca | null
  rcaPending: boolean
}

const COLUMNS = (sql: Db) => sql`
  i.id, i.project_id as "projectId", i.type, i.key, i.status, i.severity, i.title, i.occurrences,
  i.first_seen_at as "firstSeenAt", i.last_seen_at as "lastSeenAt", i.acknowledged_at as "acknowledgedAt",
  i.resolved_at as "resolvedAt", i.metadata, i.rca,
  exists (select 1 from incident_analyses a where a.incident_id = i.id) as "rcaPending"`

const iso = (d: Date | null) => (d ? d.toISOString() : null)

export const toIncident = (r: Row): Incident => ({
  ...r,
  firstSeenAt: r.firstSeenAt.toISOString(),
  lastSeenAt: r.lastSeenAt.toISOString(),
  acknowledgedAt: iso(r.acknowledgedAt),
  resolvedAt: iso(r.resolvedAt),
})

/**
 * Opens an incident, or counts the signal on the unresolved one of the same (project, type,
 * key): the partial unique index makes this safe under concurrent batches. Severity only ever
 * rises while an incident is unresolved. `opened` tells a new row from a repeat.
 */
export async function upsertIncident(sql: Db, s: Signal): Promise<{ incident: Incident; opened: boolean }> {
  const [raised] = await upsertIncidents(sql, [s])
  return raised!
}

const SEVERITY_RANK: Record<IncidentSeverity, number> = { low: 0, medium: 1, high: 2, critical: 3 }

/**
 * `upsertIncident` for several signals in one statement (one round trip, one commit: ingest
 * raises a few per batch, and concurrent batches queue on the same incident rows). Signals of
 * the same (project, type, key) are merged first, since one statement may not update a row
 * twice, and rows are taken in key order so concurrent batches lock them in one order.
 */
export async function upsertIncidents(sql: Db, signals: Signal[]): Promise<{ incident: Incident; opened: boolean }[]> {
  const merged = new Map<string, Signal>()
  for (const s of signals) {
    const k = `${s.projectId} ${s.type} ${s.key}`
    const prev = merged.get(k)
    merged.set(k, prev ? {
      ...s,
      severity: SEVERITY_RANK[prev.severity] > SEVERITY_RANK[s.severity] ? prev.severity : s.severity,
      count: prev.count + s.count,
      at: prev.at > s.at ? prev.at : s.at,
      metadata: { ...prev.metadata, ...s.metadata },
    } : s)
  }
  const input = [...merged.values()].map((s) => ({
    project_id: s.projectId, type: s.type, key: s.key, severity: s.severity, title: s.title,
    occurrences: s.count, at: s.at.toISOString(), metadata: s.metadata,
  }))
  const rows = await sql<(Row & { opened: boolean })[]>`
    with input as (
      select * from json_to_recordset(${sql.json(input as never)}::json) as x(
        project_id uuid, type text, key text, severity text, title text, occurrences integer, at timestamptz, metadata jsonb)
    ),
    up as (
      insert into incidents as i (project_id, type, key, severity, title, occurrences, first_seen_at, last_seen_at, metadata)
      select project_id, type, key, severity, title, occurrences, at, at, metadata from input
      order by project_id, type, key
      on conflict (project_id, type, key) where status <> 'resolved' do update set
        occurrences = i.occurrences + excluded.occurrences,
        last_seen_at = greatest(i.last_seen_at, excluded.last_seen_at),
        severity = case
          when array_position(array['low','medium','high','critical'], excluded.severity)
             > array_position(array['low','medium','high','critical'], i.severity)
          then excluded.severity else i.severity end,
        title = excluded.title,
        metadata = i.metadata || excluded.metadata,
        updated_at = now()
      returning i.*, (xmax = 0) as opened
    ),
    -- a new incident gets its root-cause analysis queued in the same statement (atomically)
    pending as (
      insert into incident_analyses (incident_id) select id from up where opened
      on conflict (incident_id) do nothing
    ),
    -- and its automatic remediation, when the project has a rule for the type: recorded with the
    -- incident, so a crash before the action is applied loses none (remediation applyDue)
    due as (
      insert into auto_remediations_due (incident_id)
      select up.id from up join project_settings s on s.project_id = up.project_id
      where up.opened and s.settings->'autoRemediation' ? up.type
      on conflict (incident_id) do nothing
    )
    select ${COLUMNS(sql)}, i.opened from up i`
  // the statement's snapshot does not see its own queued analysis
  return rows.map(({ opened, ...rest }) => ({ incident: toIncident({ ...(rest as Row), rcaPending: rest.rcaPending || opened }), opened }))
}

export async function findIncident(sql: Db, id: string, lock = false): Promise<Incident | undefined> {
  const [row] = lock
    ? await sql<Row[]>`select ${COLUMNS(sql)} from incidents i where i.id = ${id} for update`
    : await sql<Row[]>`select ${COLUMNS(sql)} from incidents i where i.id = ${id}`
  return row && toIncident(row)
}

/** The unresolved incident of (project, type, key), locked for an update. */
export async function findUnresolved(sql: Db, projectId: string, type: IncidentType, key: string): Promise<Incident | undefined> {
  const [row] = await sql<Row[]>`
    select ${COLUMNS(sql)} from incidents i
    where i.project_id = ${projectId} and i.type = ${type} and i.key = ${key} and i.status <> 'resolved'
    for update`
  return row && toIncident(row)
}

export async function setStatus(sql: Db, id: string, status: IncidentStatus, at: Date): Promise<Incident> {
  const [row] = await sql<Row[]>`
    with up as (
      update incidents set
        status = ${status},
        acknowledged_at = case when ${status} = 'acknowledged' then coalesce(acknowledged_at, ${at}) else acknowledged_at end,
        resolved_at = case when ${status} = 'resolved' then coalesce(resolved_at, ${at}) else resolved_at end,
        updated_at = now()
      where id = ${id}
      returning *
    )
    select ${COLUMNS(sql)} from up i`
  return toIncident(row!)
}

export async function mergeMetadata(sql: Db, id: string, metadata: Record<string, unknown>): Promise<void> {
  await sql`update incidents set metadata = metadata || ${sql.json(metadata as never)}, updated_at = now() where id = ${id}`
}

export async function listIncidents(sql: Db, projectId: string, q: IncidentQuery): Promise<Page<Incident>> {
  const where = [sql`i.project_id = ${projectId}`]
  if (q.status) where.push(sql`i.status = any(${q.status})`)
  if (q.type) where.push(sql`i.type = any(${q.type})`)
  // as text: a timestamptz parameter would go through a JavaScript Date (milliseconds)
  if (q.startDate) where.push(sql`i.last_seen_at >= ${q.startDate}::text::timestamptz`)
  if (q.endDate) where.push(sql`i.first_seen_at < ${q.endDate}::text::timestamptz`)
  const condition = where.reduce((acc, part) => sql`${acc} and ${part}`)
  const rows = await sql<Row[]>`
    select ${COLUMNS(sql)} from incidents i where ${condition}
    order by i.last_seen_at desc, i.id desc
    limit ${q.limit} offset ${(q.page - 1) * q.limit}`
  const total = await countCapped(sql, sql`select 1 from incidents i where ${condition}`)
  return toPage(rows.map(toIncident), q.page, q.limit, total)
}

/** What makes a request "related" to an incident, by type (see relatedRequests). */
export interface RelatedFilter {
  projectId: string
  model?: string
  /** Only requests slower than this (latency incidents). */
  minLatency?: number
  /** Only failed requests (error-rate incidents). */
  errorsOnly?: boolean
  /** Only requests scoring above this (high-risk incidents). */
  minRisk?: number
  /** Not the calls the SDK blocked itself (they never reached the provider), as the rules judge. */
  providerOnly?: boolean
  from: Date
  to: Date
  /**
   * Requests the collector received in this window count too, whatever their timestamp: the
   * rules run on what arrives, and an SDK shipping its backlog after an outage sends calls made
   * hours before (as `collector seed` does with its week of records).
   */
  received?: { from: Date; to: Date }
  limit: number
}

type RelatedRow = Omit<RelatedRequest, 'timestamp'> & { timestamp: Date }

/**
 * The newest requests of the incident's window that match its filter: by call time through the
 * (project_id, timestamp desc) index, and (with `received`) by arrival through the BRIN on
 * created_at, as two bounded reads merged here. One statement with an OR of the two windows was
 * planned as a walk of the project's whole newer history (194k rows for a five-day-old incident
 * in a 270k-row project: 52 ms, against 6 ms for the window's blocks through the BRIN).
 */
export async function relatedRequests(sql: Db, f: RelatedFilter): Promise<RelatedRequest[]> {
  const read = async (window: ReturnType<typeof sql>, order: 'timestamp' | 'created_at') => {
    const where = [sql`r.project_id = ${f.projectId}`, window]
    if (f.model) where.push(sql`r.model = ${f.model}`)
    if (f.minLatency !== undefined) where.push(sql`r.latency > ${f.minLatency}`)
    if (f.errorsOnly) where.push(sql`r.status = 'error'`)
    if (f.minRisk !== undefined) where.push(sql`r.risk_score > ${f.minRisk}`)
    if (f.providerOnly) where.push(sql`not (r.status = 'error' and r.metadata ? 'llmguardBlocked')`)
    const condition = where.reduce((acc, part) => sql`${acc} and ${part}`)
    return sql<RelatedRow[]>`
      select r.id, r."timestamp", r.model, r.latency, r.status, r.risk_score::int as "riskScore", r.tokens, r.cost,
        r.user_id as "userId", r.error, r.risk_reasons as "riskReasons", left(r.prompt, 200) as "promptPreview"
      from llm_requests r where ${condition}
      order by r.${sql(order)} desc, r.id desc
      limit ${f.limit}`
  }
  const [called, arrived] = await Promise.all([
    read(sql`r."timestamp" >= ${f.from} and r."timestamp" <= ${f.to}`, 'timestamp'),
    // the latest arrivals of the window: ordered by call time, the planner would walk the
    // timestamp index through everything newer instead of reading the window's blocks
    f.received ? read(sql`r.created_at >= ${f.received.from} and r.created_at <= ${f.received.to}`, 'created_at') : [],
  ])
  const byId = new Map<string, RelatedRow>()
  for (const r of [...called, ...arrived]) byId.set(r.id, r)
  return [...byId.values()]
    .sort((a, b) => b.timestamp.getTime() - a.timestamp.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    .slice(0, f.limit)
    .map((r) => ({ ...r, timestamp: r.timestamp.toISOString() }))
}

// ---- pending analyses ----

/**
 * Asks for a (new) analysis. A claim in force stays: one analysis of an incident runs at a time,
 * and its worker, finding this newer request when it finishes, hands it on (storeAnalysis).
 */
export async function requestAnalysis(sql: Db, incidentId: string): Promise<void> {
  await sql`
    insert into incident_analyses (incident_id) values (${incidentId})
    on conflict (incident_id) do update set requested_at = now(), attempts = 0,
      claimed_until = case when incident_analyses.claimed_until > now() then incident_analyses.claimed_until end`
}

/**
 * Claims the oldest pending analysis (or the given one) for `leaseMs`. `skip locked` lets
 * several instances claim different rows at once; an expired claim is fair game again.
 */
export interface Claim {
  incidentId: string
  attempts: number
  /** The request this claim answers (text: keeps Postgres' microseconds). */
  requestedAt: string
}

export async function claimAnalysis(sql: Db, leaseMs: number, incidentId?: string): Promise<Claim | undefined> {
  const [row] = await sql<Claim[]>`
    update incident_analyses a set claimed_until = now() + ${leaseMs} * interval '1 millisecond', attempts = a.attempts + 1
    where a.incident_id = (
      select incident_id from incident_analyses
      where (claimed_until is null or claimed_until < now())
        ${incidentId ? sql`and incident_id = ${incidentId}` : sql``}
      order by requested_at
      limit 1
      for update skip locked
    )
    returning a.incident_id as "incidentId", a.attempts, a.requested_at::text as "requestedAt"`
  return row
}

/**
 * Stores the analysis and clears the pending row, when it answers the latest request. False
 * when a newer request arrived meanwhile (the claim is given back, so that one runs next: an
 * older analysis never replaces a newer one) or another worker answered this one already.
 */
export async function storeAnalysis(sql: Db, claim: Claim, rca: IncidentRca): Promise<boolean> {
  // requested_at compared as text: a timestamptz parameter would go through a JS Date and lose the microseconds
  const stored = await sql`
    with answered as (
      delete from incident_analyses where incident_id = ${claim.incidentId} and requested_at::text = ${claim.requestedAt}
      returning incident_id
    )
    update incidents set rca = ${sql.json(rca as never)}, updated_at = now()
    where id in (select incident_id from answered)
    returning id`
  if (stored.length) return true
  await releaseAnalysis(sql, claim.incidentId)
  return false
}

/** Gives a claim back (shutdown): the next worker takes it at once. */
export async function releaseAnalysis(sql: Db, incidentId: string): Promise<void> {
  // handed back at a shutdown: not an attempt that failed (the give-up limit counts those)
  await sql`update incident_analyses set claimed_until = null, attempts = greatest(attempts - 1, 0) where incident_id = ${incidentId}`
}

/**
 * Counts one OpenAI analysis against the project owner's last 24 hours, unless that already
 * holds `limit` of them: false then. Workers checking at the same moment may each pass at the
 * limit (at most one over per concurrent worker: each instance runs one analysis at a time).
 */
export async function spendRcaCall(sql: Db, projectId: string, limit: number): Promise<boolean> {
  const [owner] = await sql<{ userId: string }[]>`select user_id as "userId" from projects where id = ${projectId}`
  if (!owner) return false
  const rows = await sql`
    insert into rca_calls (user_id)
    select ${owner.userId}::uuid
    where (select count(*) from rca_calls where user_id = ${owner.userId} and at > now() - interval '1 day') < ${limit}
    returning 1`
  // what no longer counts goes now and then (the user's own rows: one index range)
  if (rows.length && Math.random() < 0.05) await sql`delete from rca_calls where user_id = ${owner.userId} and at < now() - interval '1 day'`
  return rows.length > 0
}

/**
 * Claims (project, type, hour) for each anomaly type found: returns the types no detection had
 * counted for that hour before. Atomic (the primary key): of two detections at once, one gets
 * each type; inside the caller's transaction, so a detection that fails claims nothing.
 */
export async function claimAnomalyHours(sql: Db, projectId: string, hour: Date, types: string[]): Promise<Set<string>> {
  const rows = await sql<{ type: string }[]>`
    insert into anomaly_hours (project_id, type, hour)
    select ${projectId}, t, ${hour} from unnest(${types}::text[]) as t
    on conflict do nothing
    returning type`
  return new Set(rows.map((r) => r.type))
}
