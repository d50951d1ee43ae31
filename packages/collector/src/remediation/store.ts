import type { PolicyFields, Remediation, RemediationAction, RemediationActor, RemediationAudit, RemediationState } from '@llmguard/shared'
import type { Db, Sql } from '../db/connect.js'
import { countCapped, toPage } from '../db/page.js'
import type { Page } from '@llmguard/shared'
import { lockProjectSettings } from '../settings/store.js'

export interface RemediationRow {
  id: string
  seq: number
  projectId: string
  incidentId: string
  actionType: RemediationAction
  parameters: Record<string, unknown>
  before: PolicyFields
  after: PolicyFields
  state: RemediationState
  automatic: boolean
  appliedBy: string | null
  appliedAt: Date
  expiresAt: Date | null
  endedAt: Date | null
}

const COLUMNS = (sql: Db) => sql`
  id, seq, project_id as "projectId", incident_id as "incidentId", action_type as "actionType", parameters,
  before, after, state, automatic, applied_by as "appliedBy", applied_at as "appliedAt",
  expires_at as "expiresAt", ended_at as "endedAt"`

interface AuditRow {
  remediationId: string
  event: RemediationAudit['event']
  actorKind: 'user' | 'system'
  actorUserId: string | null
  at: Date
  before: PolicyFields
  after: PolicyFields
}

const actorOf = (kind: 'user' | 'system', userId: string | null): RemediationActor =>
  kind === 'user' && userId ? { kind: 'user', userId } : { kind: 'system' }

export function toRemediation(row: RemediationRow, audit: AuditRow[]): Remediation {
  return {
    id: row.id,
    incidentId: row.incidentId,
    projectId: row.projectId,
    actionType: row.actionType,
    parameters: row.parameters,
    state: row.state,
    automatic: row.automatic,
    before: row.before,
    after: row.after,
    appliedAt: row.appliedAt.toISOString(),
    appliedBy: actorOf(row.automatic ? 'system' : 'user', row.appliedBy),
    expiresAt: row.expiresAt?.toISOString() ?? null,
    endedAt: row.endedAt?.toISOString() ?? null,
    audit: audit.map((a) => ({ event: a.event, actor: actorOf(a.actorKind, a.actorUserId), at: a.at.toISOString(), before: a.before, after: a.after })),
  }
}

/**
 * Serialises policy changes of one project: remediation changes with each other, with settings
 * changes and with the project's deletion, all of which lock the project row and then the
 * settings row (see lockProjectSettings). False when the project is gone.
 */
export async function lockProject(sql: Db, projectId: string): Promise<boolean> {
  return (await lockProjectSettings(sql, projectId)) !== undefined
}

/**
 * When the project's remediations last changed its policy (an action applied or ended), as epoch
 * ms; -Infinity when it never had one. Settings never set the fields violations are about.
 */
export async function lastChange(sql: Db, projectId: string): Promise<number> {
  const [row] = await sql<{ at: Date | null }[]>`
    select max(greatest(applied_at, ended_at)) as at from remediations where project_id = ${projectId}`
  return row?.at ? row.at.getTime() : -Infinity
}

/** The active layers of a project, in apply order. */
export async function activeLayers(sql: Db, projectId: string): Promise<RemediationRow[]> {
  return sql<RemediationRow[]>`
    select ${COLUMNS(sql)} from remediations
    where project_id = ${projectId} and state = 'active' order by seq`
}

export async function findRemediation(sql: Db, id: string, lock = false): Promise<RemediationRow | undefined> {
  const [row] = lock
    ? await sql<RemediationRow[]>`select ${COLUMNS(sql)} from remediations where id = ${id} for update`
    : await sql<RemediationRow[]>`select ${COLUMNS(sql)} from remediations where id = ${id}`
  return row
}

export interface NewRemediation {
  projectId: string
  incidentId: string
  actionType: RemediationAction
  parameters: Record<string, unknown>
  before: PolicyFields
  after: PolicyFields
  automatic: boolean
  appliedBy: string | null
  appliedAt: Date
  expiresAt: Date | null
}

/** Inserts an action; undefined when the incident already has its automatic one. */
export async function insertRemediation(sql: Db, r: NewRemediation): Promise<RemediationRow | undefined> {
  const [row] = await sql<RemediationRow[]>`
    insert into remediations (project_id, incident_id, action_type, parameters, before, after, automatic, applied_by, applied_at, expires_at)
    values (${r.projectId}, ${r.incidentId}, ${r.actionType}, ${sql.json(r.parameters as never)}, ${sql.json(r.before as never)},
            ${sql.json(r.after as never)}, ${r.automatic}, ${r.appliedBy}, ${r.appliedAt}, ${r.expiresAt})
    on conflict (incident_id) where automatic do nothing
    returning ${COLUMNS(sql)}`
  return row
}

export async function endRemediation(sql: Db, id: string, state: Exclude<RemediationState, 'active'>, at: Date): Promise<void> {
  await sql`update remediations set state = ${state}, ended_at = ${at} where id = ${id} and state = 'active'`
}

export async function insertAudit(
  sql: Db,
  e: { remediationId: string; event: RemediationAudit['event']; actor: RemediationActor; at: Date; before: PolicyFields; after: PolicyFields },
): Promise<void> {
  await sql`
    insert into remediation_audit (remediation_id, event, actor_kind, actor_user_id, at, before, after)
    values (${e.remediationId}, ${e.event}, ${e.actor.kind}, ${e.actor.kind === 'user' ? e.actor.userId : null}, ${e.at},
            ${sql.json(e.before as never)}, ${sql.json(e.after as never)})`
}

export async function auditOf(sql: Db, ids: string[]): Promise<Map<string, AuditRow[]>> {
  const out = new Map<string, AuditRow[]>()
  if (!ids.length) return out
  const rows = await sql<AuditRow[]>`
    select remediation_id as "remediationId", event, actor_kind as "actorKind", actor_user_id as "actorUserId", at, before, after
    from remediation_audit where remediation_id = any(${sql.array(ids)}::uuid[]) order by id`
  for (const row of rows) {
    const list = out.get(row.remediationId) ?? []
    list.push(row)
    out.set(row.remediationId, list)
  }
  return out
}

export async function listByIncident(sql: Db, incidentId: string, page: number, limit: number): Promise<Page<RemediationRow>> {
  const items = await sql<RemediationRow[]>`
    select ${COLUMNS(sql)} from remediations where incident_id = ${incidentId}
    order by seq desc limit ${limit} offset ${(page - 1) * limit}`
  const total = await countCapped(sql, sql`select 1 from remediations where incident_id = ${incidentId}`)
  return toPage(items, page, limit, total)
}

/** Active automatic actions whose time is up, oldest first. */
export async function dueForExpiry(sql: Db, now: Date): Promise<RemediationRow[]> {
  return sql<RemediationRow[]>`
    select ${COLUMNS(sql)} from remediations
    where state = 'active' and expires_at is not null and expires_at <= ${now}
    order by expires_at, seq limit 500`
}

// ---- automatic remediations due (recorded with the incident by incidents/store.ts upsertIncidents) ----

export interface Due {
  incidentId: string
  projectId: string
}

/** The due automatic actions, oldest first (the given incident's only, when given one). */
export async function findDue(sql: Db, limit: number, incidentId?: string): Promise<Due[]> {
  return sql<Due[]>`
    select d.incident_id as "incidentId", i.project_id as "projectId"
    from auto_remediations_due d join incidents i on i.id = d.incident_id
    ${incidentId ? sql`where d.incident_id = ${incidentId}` : sql``}
    order by d.due_at limit ${limit}`
}

/**
 * Takes the incident's due row inside the transaction that applies its action: false when
 * another instance took it first (it waits for that one to commit, then sees no row).
 */
export async function takeDue(sql: Db, incidentId: string): Promise<boolean> {
  return (await sql`delete from auto_remediations_due where incident_id = ${incidentId} returning 1`).length > 0
}

/** What became of a due action whose application failed (failedDue). */
export type DueFailure =
  /** still due, after this many failed attempts: the next sweep tries again */
  | { outcome: 'retry'; attempts: number }
  /** this call counted the last allowed attempt and took the row off the due list */
  | { outcome: 'given_up'; attempts: number }
  /** no longer due: another instance applied it meanwhile, or its incident or project went */
  | { outcome: 'gone' }

/**
 * Counts a failed application; the row goes once it has failed `maxAttempts` times. The count
 * and the removal are one transaction holding the row, so "given up" is said only by the call
 * that removed it, never of a row another instance applied (or gave up) in between.
 */
export async function failedDue(sql: Sql, incidentId: string, maxAttempts: number): Promise<DueFailure> {
  return sql.begin(async (tx) => {
    const [row] = await tx<{ attempts: number }[]>`
      update auto_remediations_due set attempts = attempts + 1 where incident_id = ${incidentId} returning attempts`
    if (!row) return { outcome: 'gone' }
    if (row.attempts < maxAttempts) return { outcome: 'retry', attempts: row.attempts }
    const removed = await tx`delete from auto_remediations_due where incident_id = ${incidentId} returning 1`
    return removed.length ? { outcome: 'given_up', attempts: row.attempts } : { outcome: 'gone' }
  })
}
