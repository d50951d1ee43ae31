import { ALL_MODELS_KEY, type Incident, type RelatedRequest } from '@llmguard/shared'
import type { Db } from '../db/connect.js'
import { hourOf } from './rules.js'
import { relatedRequests, type RelatedFilter } from './store.js'

const HOUR_MS = 3_600_000
export const RELATED_LIMIT = 20

/** Totals of a span of hours (from the rollups). */
export interface Aggregate {
  requests: number
  errors: number
  errorRate: number
  avgLatency: number
  avgCostPerRequest: number | null
  avgTokens: number
  /** model → requests, largest first */
  models: Record<string, number>
}

/** What an analysis (OpenAI's or the heuristic one) is based on. */
export interface Evidence {
  related: RelatedRequest[]
  /** The incident's hours. */
  window: Aggregate & { from: string; to: string }
  /** The 24 hours before them. */
  baseline: Aggregate & { from: string; to: string }
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined)

/** Which requests belong to an incident: its model (for rules), its kind of trouble, its time. */
export function relatedFilter(incident: Incident): RelatedFilter {
  const m = incident.metadata
  const anomalyHour = typeof m.hour === 'string' ? new Date(m.hour) : undefined
  const from = anomalyHour ?? new Date(Date.parse(incident.firstSeenAt) - HOUR_MS)
  const to = anomalyHour ? new Date(anomalyHour.getTime() + HOUR_MS) : new Date(Date.parse(incident.lastSeenAt) + 5 * 60_000)
  const filter: RelatedFilter = { projectId: incident.projectId, from, to, limit: RELATED_LIMIT }
  // a rule fires on what arrives: the records that raised it arrived in this window, whenever
  // they were made (an anomaly is a finding about one hour of call times: that hour alone)
  if (!anomalyHour) filter.received = { from, to }
  const isModelKey = incident.type !== 'datadog' && incident.key !== ALL_MODELS_KEY
  if (isModelKey) filter.model = incident.key
  if (incident.type === 'latency') filter.minLatency = num(m.thresholdMs)
  if (incident.type === 'error_rate' || incident.type === 'anomaly_error_rate') filter.errorsOnly = true
  if (incident.type === 'high_risk') filter.minRisk = num(m.thresholdScore)
  // the rules and the anomaly job leave the SDK's own blocks out (migration 0011); a risky
  // prompt the SDK blocked is still evidence of a high-risk incident
  else if (incident.type !== 'datadog') filter.providerOnly = true
  return filter
}

async function aggregate(sql: Db, projectId: string, model: string | undefined, from: Date, to: Date): Promise<Aggregate> {
  const rows = await sql<{ model: string; requests: number; errors: number; latencySum: number; tokens: number; cost: number; priced: number }[]>`
    -- as the rules judge them: without the calls the SDK blocked itself (migration 0011)
    select model, sum(requests - blocked)::float8 as requests, sum(errors - blocked)::float8 as errors, sum(latency_sum)::float8 as "latencySum",
      sum(tokens)::float8 as tokens, sum(cost_sum)::float8 as cost, sum(requests - unpriced - blocked_priced)::float8 as priced
    from request_rollups
    where project_id = ${projectId} and hour >= ${from} and hour < ${to} ${model ? sql`and model = ${model}` : sql``}
    group by model
    order by 2 desc`
  const t = rows.reduce(
    (a, r) => ({
      requests: a.requests + r.requests,
      errors: a.errors + r.errors,
      latencySum: a.latencySum + r.latencySum,
      tokens: a.tokens + r.tokens,
      cost: a.cost + r.cost,
      priced: a.priced + r.priced,
    }),
    { requests: 0, errors: 0, latencySum: 0, tokens: 0, cost: 0, priced: 0 },
  )
  return {
    requests: t.requests,
    errors: t.errors,
    errorRate: t.requests ? t.errors / t.requests : 0,
    avgLatency: t.requests ? t.latencySum / t.requests : 0,
    avgCostPerRequest: t.priced ? t.cost / t.priced : null,
    avgTokens: t.requests ? t.tokens / t.requests : 0,
    models: Object.fromEntries(rows.map((r) => [r.model, r.requests])),
  }
}

/** The last 20 related requests and the rollup totals of the incident's hours and the day before. */
export async function gatherEvidence(sql: Db, incident: Incident): Promise<Evidence> {
  const filter = relatedFilter(incident)
  const anomalyHour = typeof incident.metadata.hour === 'string' ? new Date(incident.metadata.hour) : undefined
  let start = anomalyHour ?? hourOf(new Date(incident.firstSeenAt))
  let end = new Date((anomalyHour ?? hourOf(new Date(incident.lastSeenAt))).getTime() + HOUR_MS)
  const related = await relatedRequests(sql, filter)
  // raised by calls made long before they arrived (an SDK's backlog after an outage): the
  // rollups hold them at their call times, so compare those hours, not the hours of arrival
  const times = related.map((r) => Date.parse(r.timestamp))
  if (!anomalyHour && times.length && times.every((t) => t < start.getTime() || t >= end.getTime())) {
    start = hourOf(new Date(Math.min(...times)))
    end = new Date(hourOf(new Date(Math.max(...times))).getTime() + HOUR_MS)
  }
  const baseFrom = new Date(start.getTime() - 24 * HOUR_MS)
  const [window, baseline] = [
    await aggregate(sql, incident.projectId, filter.model, start, end),
    await aggregate(sql, incident.projectId, filter.model, baseFrom, start),
  ]
  return {
    related,
    window: { ...window, from: start.toISOString(), to: end.toISOString() },
    baseline: { ...baseline, from: baseFrom.toISOString(), to: start.toISOString() },
  }
}
