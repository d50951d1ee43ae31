import { isDeepStrictEqual } from 'node:util'
import type { AutoRemediationRule, Incident, Page, PaginationQuery, Remediation, RemediationActor, RemediationRequest } from '@llmguard/shared'
import { userIdOf } from '../auth/guard.js'
import type { Db, Sql } from '../db/connect.js'
import { AppError, notFound } from '../http/errors.js'
import type { Principal } from '../http/route.js'
import { findIncident } from '../incidents/store.js'
import type { Logger } from '../logger.js'
import { policyFromSettings, type PolicyBody, type PolicyOverlay, type PolicyService } from '../policy/service.js'
import { findPolicySource } from '../policy/store.js'
import { parseStoredSettings } from '../settings/service.js'
import { conflicts, fold, read, targetOf } from './overlay.js'
import * as store from './store.js'

export interface RemediationServiceDeps {
  sql: Sql
  logger: Logger
  policy: Pick<PolicyService, 'bumpVersion'>
  /** Ownership check of the projects service (404 unknown, 403 another user's). */
  assertAccess(principal: Principal, projectId: string): Promise<void>
}

/** Runs after a transaction that changed a project's active actions commits (per-instance caches). */
export type RemediationChangeListener = (projectId: string) => void

const MINUTE_MS = 60_000
/** Failed applications of one due automatic action before it is given up (and logged). */
export const MAX_DUE_ATTEMPTS = 5
/** Due automatic actions one sweep works through (the rest wait a minute). */
const DUE_SWEEP_LIMIT = 500

export function createRemediationService(deps: RemediationServiceDeps) {
  const { sql, logger, policy } = deps
  /** The clock of apply and expiry times; replaceable so tests can move time without waiting. */
  const clock = { now: () => new Date() }
  const listeners: RemediationChangeListener[] = []
  const changed = (projectId: string) => {
    for (const l of listeners) l(projectId)
  }

  async function basePolicy(db: Db, projectId: string): Promise<PolicyBody> {
    const source = await findPolicySource(db, projectId)
    if (!source) throw notFound('project')
    return policyFromSettings(parseStoredSettings(source.settings ?? undefined))
  }

  async function withRows(db: Db, rows: store.RemediationRow[]): Promise<Remediation[]> {
    const audit = await store.auditOf(db, rows.map((r) => r.id))
    return rows.map((r) => store.toRemediation(r, audit.get(r.id) ?? []))
  }

  async function ownedIncident(principal: Principal, incidentId: string): Promise<Incident> {
    const incident = await findIncident(sql, incidentId)
    if (!incident) throw notFound('incident')
    await deps.assertAccess(principal, incident.projectId)
    return incident
  }

  /**
   * Applies one action in `db` (a transaction): the policy changes, the touched fields' values
   * before and after are kept, an audit entry is written, and the version moves only when the
   * effective policy did. Undefined when the incident already had its automatic action.
   */
  async function applyIn(
    db: Db,
    incident: Pick<Incident, 'id' | 'projectId'>,
    request: RemediationRequest,
    options: { actor: RemediationActor; now: Date; expiresAt: Date | null },
  ): Promise<store.RemediationRow | undefined> {
    if (!(await store.lockProject(db, incident.projectId))) throw notFound('project')
    const base = await basePolicy(db, incident.projectId)
    const layers = await store.activeLayers(db, incident.projectId)
    const current = fold(base, layers)
    const after = targetOf(request.actionType, request.parameters as never, current, base)
    const before = read(current, after)
    const row = await store.insertRemediation(db, {
      projectId: incident.projectId,
      incidentId: incident.id,
      actionType: request.actionType,
      parameters: request.parameters,
      before,
      after,
      automatic: options.actor.kind === 'system',
      appliedBy: options.actor.kind === 'user' ? options.actor.userId : null,
      appliedAt: options.now,
      expiresAt: options.expiresAt,
    })
    if (!row) return undefined
    const next = fold(base, [...layers, row])
    if (!isDeepStrictEqual(current, next)) await policy.bumpVersion(db, incident.projectId)
    await store.insertAudit(db, { remediationId: row.id, event: 'applied', actor: options.actor, at: options.now, before, after: read(next, after) })
    return row
  }

  /**
   * Ends an active action (rollback or expiry) in `db`: its layer goes, so its fields show what
   * is under it again. A rollback is refused when a later active action changed those fields;
   * an expiry is not (the duration is over; the later action keeps its fields).
   */
  async function endIn(db: Db, id: string, how: 'rolled_back' | 'expired', actor: RemediationActor, now: Date): Promise<store.RemediationRow | undefined> {
    const peek = await store.findRemediation(db, id)
    // the project (and with it the action) deleted meanwhile: nothing is left to end
    const row = peek && (await store.lockProject(db, peek.projectId)) ? await store.findRemediation(db, id, true) : undefined
    if (!row) {
      if (how === 'expired') return undefined
      throw notFound('remediation')
    }
    if (row.state !== 'active') {
      if (how === 'expired') return undefined
      throw new AppError('CONFLICT', `this remediation is already ${row.state.replace('_', ' ')}`, { state: row.state })
    }
    const base = await basePolicy(db, row.projectId)
    const layers = await store.activeLayers(db, row.projectId)
    if (how === 'rolled_back') {
      const later = layers.filter((l) => l.seq > row.seq && conflicts(row, l))
      if (later.length) {
        throw new AppError('ROLLBACK_CONFLICT', 'a later remediation changed the fields this one set; roll that one back first', {
          conflictingRemediationIds: later.map((l) => l.id),
        })
      }
    }
    const current = fold(base, layers)
    const next = fold(base, layers.filter((l) => l.id !== row.id))
    await store.endRemediation(db, row.id, how, now)
    if (!isDeepStrictEqual(current, next)) await policy.bumpVersion(db, row.projectId)
    await store.insertAudit(db, { remediationId: row.id, event: how, actor, at: now, before: read(current, row.after), after: read(next, row.after) })
    return (await store.findRemediation(db, id))!
  }

  /**
   * Applies the incident's due automatic action (recorded when it opened), if it still is due:
   * the project's rule for the incident type, applied by the system until `durationMinutes`
   * from now. Exactly once across instances: the due row goes in the transaction that applies
   * the action, after the project lock that serialises the project's policy changes. Nothing
   * for an incident resolved meanwhile (a late application, after a restart, would change
   * the policy for a problem already over) or whose project has dropped the rule. A failure is
   * counted and logged here, once, saying what happens next; then rethrown.
   */
  async function applyDue(incidentId: string): Promise<Remediation | undefined> {
    const [due] = await store.findDue(sql, 1, incidentId)
    if (!due) return undefined
    const now = clock.now()
    let applied: { row: store.RemediationRow; rule: AutoRemediationRule } | undefined
    try {
      applied = await sql.begin(async (tx) => {
        // the project deleted meanwhile: the due row went with it
        if (!(await store.lockProject(tx, due.projectId))) return undefined
        if (!(await store.takeDue(tx, incidentId))) return undefined
        const incident = await findIncident(tx, incidentId)
        const source = await findPolicySource(tx, due.projectId)
        const rule = incident && source ? parseStoredSettings(source.settings ?? undefined).autoRemediation[incident.type] : undefined
        if (!incident || !rule) return undefined
        if (incident.status === 'resolved') {
          logger.info({ incidentId, projectId: due.projectId }, 'automatic remediation skipped: the incident was resolved before it could be applied')
          return undefined
        }
        const request = { actionType: rule.action, parameters: rule.parameters } as RemediationRequest
        const row = await applyIn(tx, incident, request, { actor: { kind: 'system' }, now, expiresAt: new Date(now.getTime() + rule.durationMinutes * MINUTE_MS) })
        return row && { row, rule }
      })
    } catch (err) {
      await failed(err, due)
      throw err
    }
    if (!applied) return undefined
    const { row, rule } = applied
    changed(due.projectId)
    logger.info({ incidentId, projectId: due.projectId, remediationId: row.id, action: rule.action, expiresAt: row.expiresAt }, 'automatic remediation applied')
    const [out] = await withRows(sql, [row])
    return out
  }

  /**
   * The one log line of a failed application, saying what happens next: tried again at the next
   * sweep, given up, or nothing (no longer due). A failure that could not even be counted (the
   * database down) costs no attempt; the row, if still there, stays for the next sweep.
   */
  async function failed(err: unknown, due: store.Due): Promise<void> {
    const ids = { incidentId: due.incidentId, projectId: due.projectId }
    let next: store.DueFailure | undefined
    try {
      next = await store.failedDue(sql, due.incidentId, MAX_DUE_ATTEMPTS)
    } catch (countErr) {
      logger.error({ err, countErr, ...ids }, 'automatic remediation failed, and so did counting the attempt; retrying at the next sweep')
      return
    }
    if (next.outcome === 'retry') logger.error({ err, ...ids, attempts: next.attempts }, 'automatic remediation failed; retrying at the next sweep')
    else if (next.outcome === 'given_up') logger.error({ err, ...ids, attempts: next.attempts }, `automatic remediation given up after ${MAX_DUE_ATTEMPTS} failed attempts`)
    else logger.warn({ err, ...ids }, 'automatic remediation failed here, and is no longer due (another instance applied it, or the incident or project is gone)')
  }

  /**
   * Applies every due automatic action (start-up, and a minute job on every instance): those
   * whose incident's instance crashed or stopped before applying them, or failed to. Returns
   * how many were applied here. `stop` is asked before each action: a collector told to stop
   * does not wait for hundreds of them, and what it leaves stays due.
   */
  async function applyAllDue(stop: () => boolean = () => false): Promise<number> {
    let applied = 0
    for (const due of await store.findDue(sql, DUE_SWEEP_LIMIT)) {
      if (stop()) break
      try {
        if (await applyDue(due.incidentId)) applied++
      } catch {
        // applyDue logged it, with what happens next (retried, given up, or no longer due)
      }
    }
    return applied
  }

  const overlay: PolicyOverlay = async (db, projectId, body) => fold(body, await store.activeLayers(db, projectId))

  return {
    clock,
    /** Per-instance caches register here to hear about changes made on this instance. */
    listeners,
    overlay,

    async apply(principal: Principal, incidentId: string, request: RemediationRequest): Promise<Remediation> {
      const incident = await ownedIncident(principal, incidentId)
      const now = clock.now()
      const row = await sql.begin((tx) => applyIn(tx, incident, request, { actor: { kind: 'user', userId: userIdOf(principal) }, now, expiresAt: null }))
      changed(incident.projectId)
      const [out] = await withRows(sql, [row!])
      return out!
    },

    async list(principal: Principal, incidentId: string, q: PaginationQuery): Promise<Page<Remediation>> {
      await ownedIncident(principal, incidentId)
      const page = await store.listByIncident(sql, incidentId, q.page, q.limit)
      return { ...page, items: await withRows(sql, page.items) }
    },

    async rollback(principal: Principal, id: string): Promise<Remediation> {
      const found = await store.findRemediation(sql, id)
      if (!found) throw notFound('remediation')
      await deps.assertAccess(principal, found.projectId)
      const row = await sql.begin((tx) => endIn(tx, id, 'rolled_back', { kind: 'user', userId: userIdOf(principal) }, clock.now()))
      changed(found.projectId)
      const [out] = await withRows(sql, [row!])
      return out!
    },

    applyDue,

    /** The incident-opened hook: the new incident's automatic action, at once. */
    autoApply: (incident: Pick<Incident, 'id'>) => applyDue(incident.id),

    applyAllDue,

    /** The revert job's work (inside the job's transaction): ends every automatic action due by `now`. */
    async expireDue(db: Db, now: Date): Promise<Remediation[]> {
      const ended: store.RemediationRow[] = []
      for (const due of await store.dueForExpiry(db, now)) {
        const row = await endIn(db, due.id, 'expired', { kind: 'system' }, now)
        if (row) ended.push(row)
      }
      return withRows(db, ended)
    },

    /** Tell this instance's listeners (after the expiry transaction committed). */
    changed,
  }
}

export type RemediationService = ReturnType<typeof createRemediationService>
