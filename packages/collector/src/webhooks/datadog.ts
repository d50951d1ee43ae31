import { cutText, DATADOG_PROJECT_TAG, datadogPayloadSchema, datadogResultSchema, toIssues, type DatadogPayload, type DatadogResult, type IncidentSeverity } from '@llmguard/shared'
import type { Sql } from '../db/connect.js'
import { parseJson, refuseUnstorable } from '../http/body.js'
import { AppError } from '../http/errors.js'
import { defineRoute, type RouteDef } from '../http/route.js'
import type { IncidentService, Raised } from '../incidents/service.js'
import * as store from '../incidents/store.js'
import { DATADOG_TOLERANCE_SECONDS, verifyDatadogRequest, withinWindow } from '../integrations/datadog.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Datadog monitor priorities (P1–P5; events say normal/low). */
export function severityOfPriority(priority: string | null | undefined): IncidentSeverity {
  switch ((priority ?? '').trim().toUpperCase()) {
    case 'P1':
      return 'critical'
    case 'P2':
      return 'high'
    case 'P4':
    case 'P5':
    case 'LOW':
      return 'low'
    default:
      return 'medium'
  }
}

/** The project named by the `llmguard_project:<id>` tag of a comma-separated tag list. */
export function projectFromTags(tags: string): string | undefined {
  for (const tag of tags.split(',')) {
    const [name, ...rest] = tag.trim().split(':')
    if (name === DATADOG_PROJECT_TAG) return rest.join(':').trim()
  }
  return undefined
}

const unauthorized = (message: string) => new AppError('WEBHOOK_SIGNATURE_INVALID', message)

/** How far back an alert's own date is taken as its time (a retried delivery is late). */
const ALERT_DATE_MAX_AGE_MS = 24 * 3_600_000

/**
 * When the alert happened: its date, unless that is in the future (past the clock tolerance) or
 * over a day old, when the receipt time is: an incident's first and last seen must stay near
 * the truth, or a year-2200 date would pin it to the top of "most recently active" for good.
 */
function alertTime(date: number | undefined, now: Date): Date {
  if (date === undefined) return now
  const t = now.getTime()
  return date > t + DATADOG_TOLERANCE_SECONDS * 1000 || date < t - ALERT_DATE_MAX_AGE_MS ? now : new Date(date)
}

/**
 * Records one alert: the alert id is claimed first (a replay is a no-op), then "Recovered"
 * resolves the unresolved incident of the monitor and anything else opens or counts one, all
 * in one transaction so a failure leaves the id free for Datadog's retry.
 *
 * Datadog does not deliver in order: a retried "Triggered" can arrive after the "Recovered"
 * that ended it, and would open an incident that nothing resolves any more. Every recovery is
 * remembered with its monitor and time, and an alert dated at or before a recovery of its
 * monitor already received opens nothing, and a recovery dated before the alert that last
 * counted on the open incident resolves nothing.
 */
async function processAlert(sql: Sql, projectId: string, p: DatadogPayload, now: Date): Promise<{ result: DatadogResult; raised: Raised[] }> {
  return sql.begin(async (tx) => {
    // one alert of a monitor at a time: a Triggered and its Recovered arriving together would
    // each miss the other's uncommitted row (no open incident to resolve, no recovery to see),
    // and leave an incident open that nothing resolves
    await tx`select pg_advisory_xact_lock(hashtext(${`datadog:${projectId}:${p.monitorId}`}))`
    const at = alertTime(p.date, now)
    const recovery = p.transition.trim().toLowerCase() === 'recovered'
    const claimed = await tx`
      insert into datadog_events (id, project_id, monitor_id, recovered_at) values (${p.id}, ${projectId}, ${p.monitorId}, ${recovery ? at : null})
      on conflict (project_id, id) do nothing returning id`
    if (!claimed.length) return { result: { duplicate: true }, raised: [] }
    const metadata = {
      monitorId: p.monitorId,
      transition: p.transition,
      priority: p.priority ?? null,
      alertPriority: p.alertPriority ?? null,
      link: p.link ?? null,
      tags: p.tags.split(',').map((t) => t.trim()).filter(Boolean),
      body: p.body ? cutText(p.body, 4_000) : null,
      lastEventId: p.id,
    }
    if (recovery) {
      const open = await store.findUnresolved(tx, projectId, 'datadog', p.monitorId)
      if (!open) return { result: { duplicate: false, incident: null }, raised: [] }
      // a late recovery, older than the alert that last counted: the monitor alerted again after
      // it, so the incident stays open (its own recovery is still to come)
      if (Date.parse(open.lastSeenAt) > at.getTime()) return { result: { duplicate: false, incident: null }, raised: [] }
      await store.mergeMetadata(tx, open.id, { ...metadata, recoveredAt: at.toISOString() })
      const resolved = await store.setStatus(tx, open.id, 'resolved', at)
      await tx`update datadog_events set incident_id = ${open.id} where project_id = ${projectId} and id = ${p.id}`
      return { result: { duplicate: false, incident: resolved }, raised: [] }
    }
    const [recovered] = await tx`
      select 1 from datadog_events
      where project_id = ${projectId} and monitor_id = ${p.monitorId} and recovered_at >= ${at}
      limit 1`
    if (recovered) return { result: { duplicate: false, incident: null }, raised: [] }
    const raised = await store.upsertIncident(tx, {
      projectId,
      type: 'datadog',
      key: p.monitorId,
      // the monitor's P1–P5 when the payload carries it: `$PRIORITY` is only normal or low
      severity: severityOfPriority(p.alertPriority?.trim() ? p.alertPriority : p.priority),
      title: p.title.trim() || `Datadog monitor ${p.monitorId}: ${p.transition}`,
      count: 1,
      at,
      metadata,
    })
    await tx`update datadog_events set incident_id = ${raised.incident.id} where project_id = ${projectId} and id = ${p.id}`
    return { result: { duplicate: false, incident: raised.incident }, raised: [raised] }
  }) as Promise<{ result: DatadogResult; raised: Raised[] }>
}

export function datadogRoutes(deps: {
  sql: Sql
  secret?: string
  incidents: IncidentService
  verifyKey: (key: string) => Promise<{ projectId: string } | undefined>
  now?: () => Date
}): RouteDef[] {
  const now = deps.now ?? (() => new Date())
  return [
    defineRoute({
      method: 'POST',
      path: '/v1/webhooks/datadog',
      auth: 'none',
      rawBody: true,
      summary: 'Datadog monitor alerts (signed with DATADOG_WEBHOOK_SECRET, carrying an API key of the tagged project; see docs/datadog.md)',
      tags: ['webhooks'],
      responses: { 200: datadogResultSchema },
      handler: async ({ headers, rawBody }) => {
        if (!deps.secret) throw new AppError('WEBHOOK_NOT_CONFIGURED', 'Datadog webhooks are not configured: set DATADOG_WEBHOOK_SECRET')
        const verified = verifyDatadogRequest(deps.secret, headers, rawBody)
        if (!verified.ok) throw unauthorized(verified.reason)
        const at = now()
        if (verified.method === 'signature' && !withinWindow(verified.timestamp, at.getTime())) {
          throw unauthorized(`signature timestamp is more than ${DATADOG_TOLERANCE_SECONDS} s away from now`)
        }
        const json = parseJson(rawBody)
        refuseUnstorable(json, 'body')
        const parsed = datadogPayloadSchema.safeParse(json)
        if (!parsed.success) {
          const issues = toIssues(parsed.error)
          throw new AppError('VALIDATION_ERROR', `invalid Datadog payload: ${issues[0]?.path}: ${issues[0]?.message}`, { issues })
        }
        const payload = parsed.data
        // the secret header carries no time of its own: the alert's date bounds its age
        if (verified.method === 'secret' && (payload.date === undefined || !withinWindow(payload.date / 1000, at.getTime()))) {
          throw unauthorized(`the payload's date (epoch ms) must be within ${DATADOG_TOLERANCE_SECONDS} s of now`)
        }
        const projectId = projectFromTags(payload.tags)
        if (!projectId || !UUID.test(projectId)) {
          throw new AppError('VALIDATION_ERROR', `tags must include ${DATADOG_PROJECT_TAG}:<project id>`, {
            issues: [{ path: 'tags', message: `missing or malformed ${DATADOG_PROJECT_TAG}:<project id>` }],
          })
        }
        // the secret is the install's, shared by every user who sets up Datadog: it proves the
        // alert comes through a configured webhook, not whose project it may act on. That takes
        // an API key of the tagged project, which only that project's owner has
        const key = headers['x-api-key']?.trim()
        if (!key) throw new AppError('UNAUTHORIZED', "an X-API-Key header with an API key of the alert's project is required (see docs/datadog.md)")
        const owner = await deps.verifyKey(key)
        if (!owner) throw new AppError('INVALID_API_KEY', 'invalid or revoked API key')
        if (owner.projectId !== projectId) throw new AppError('FORBIDDEN', `the API key belongs to another project than the alert's ${DATADOG_PROJECT_TAG} tag`)
        const { result, raised } = await processAlert(deps.sql, projectId, payload, at)
        await deps.incidents.notify(raised)
        return result
      },
    }),
  ]
}
