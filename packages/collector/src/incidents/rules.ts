import type { Db } from '../db/connect.js'
import type { ScoredRecord } from '../ingest/pipeline.js'
import type { Signal } from './store.js'
import type { Thresholds } from './thresholds.js'

const HOUR_MS = 3_600_000
/** How far back the high-risk rule looks for the start of a streak that a batch continues. */
const STREAK_LOOKBACK_MS = HOUR_MS

export const hourOf = (d: Date) => new Date(Math.floor(d.getTime() / HOUR_MS) * HOUR_MS)

/** A call the SDK refused itself (recorded as an error with metadata.llmguardBlocked). */
export const blockedBySdk = (r: Pick<ScoredRecord, 'metadata'>) => r.metadata !== undefined && r.metadata !== null && 'llmguardBlocked' in r.metadata

const byModel = (records: ScoredRecord[]) => {
  const groups = new Map<string, ScoredRecord[]>()
  for (const r of records) {
    const list = groups.get(r.model)
    if (list) list.push(r)
    else groups.set(r.model, [r])
  }
  return groups
}

/** Latency rule (no database): every request slower than the threshold counts. */
export function latencySignals(projectId: string, records: ScoredRecord[], t: Thresholds, now: Date): Signal[] {
  const signals: Signal[] = []
  for (const [model, list] of byModel(records)) {
    const slow = list.filter((r) => r.latency > t.incidentLatencyMs)
    if (!slow.length) continue
    const worst = slow.reduce((a, b) => (b.latency > a.latency ? b : a))
    signals.push({
      projectId,
      type: 'latency',
      key: model,
      severity: worst.latency > 2 * t.incidentLatencyMs ? 'high' : 'medium',
      title: `Latency above ${t.incidentLatencyMs} ms on ${model} (${worst.latency} ms)`,
      count: slow.length,
      at: now,
      metadata: { thresholdMs: t.incidentLatencyMs, maxLatencyMs: worst.latency, lastRequestId: slow.at(-1)!.id },
    })
  }
  return signals
}

/**
 * The high-risk rule: `incidentRiskConsecutive` requests in a row of one model scoring above
 * `incidentRiskScore`. A batch decides alone unless it starts with a high-risk run, which may
 * continue a streak stored before it: only then are the few records before it read (walking the
 * (project_id, timestamp) index back at most an hour), so ordinary batches cost no query.
 */
export async function highRiskSignals(sql: Db, projectId: string, records: ScoredRecord[], t: Thresholds, now: Date): Promise<Signal[]> {
  const need = t.incidentRiskConsecutive
  const high = (risk: number) => risk > t.incidentRiskScore
  const signals: Signal[] = []
  for (const [model, unsorted] of byModel(records)) {
    if (!unsorted.some((r) => high(r.riskScore))) continue
    const list = [...unsorted].sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp))
    let leading = 0
    while (leading < list.length && high(list[leading]!.riskScore)) leading++
    let run = 0
    if (leading > 0 && need > 1) {
      const first = list[0]!
      const before = await sql<{ risk: number }[]>`
        select risk_score::int as risk from llm_requests
        where project_id = ${projectId} and model = ${model}
          and "timestamp" <= ${first.timestamp} and "timestamp" > ${new Date(Date.parse(first.timestamp) - STREAK_LOOKBACK_MS)}
          and id <> all(${list.map((r) => r.id)}::uuid[])
        order by "timestamp" desc, id desc
        limit ${need - 1}`
      for (const row of before) {
        if (!high(row.risk)) break
        run++
      }
    }
    let hits = 0
    let maxRisk = 0
    let last: ScoredRecord | undefined
    for (const r of list) {
      if (high(r.riskScore)) {
        run++
        if (run >= need) {
          hits++
          maxRisk = Math.max(maxRisk, r.riskScore)
          last = r
        }
      } else run = 0
    }
    if (!hits) continue
    const codes = [...new Set(list.filter((r) => high(r.riskScore)).flatMap((r) => r.riskReasons.map((x) => x.code)))]
    signals.push({
      projectId,
      type: 'high_risk',
      key: model,
      severity: maxRisk >= 95 ? 'critical' : 'high',
      title: `${need}+ consecutive requests on ${model} scored above ${t.incidentRiskScore} (max ${maxRisk})`,
      count: hits,
      at: now,
      metadata: { thresholdScore: t.incidentRiskScore, consecutive: need, maxRiskScore: maxRisk, reasonCodes: codes, lastRequestId: last!.id },
    })
  }
  return signals
}

interface RollupRow {
  model: string
  curRequests: number
  curErrors: number
  prevRequests: number
  prevErrors: number
  curCost: number
  curPriced: number
  baseCost: number
  basePriced: number
  costSpike: boolean
}

/**
 * The error-rate and cost rules, read from the hourly rollups that the store statement has
 * just updated (one small query over at most 25 rollup rows per model, never raw rows).
 *
 * Error rate over the last hour: the current hour plus the previous hour weighted by the part
 * of it still inside the sliding hour (the usual sliding-window estimate). Evaluated for models
 * with an error in the batch from the last hour.
 *
 * Cost spike: the current hour's average cost per priced request against the average over the
 * 24 hours before it ("the daily average"), compared in exact numeric arithmetic. Evaluated for
 * models with priced records in the current hour.
 *
 * Both need `incidentMinRequests` requests on each side of the comparison.
 */
export async function rollupSignals(sql: Db, projectId: string, records: ScoredRecord[], t: Thresholds, now: Date): Promise<Signal[]> {
  const cur = hourOf(now)
  const prev = new Date(cur.getTime() - HOUR_MS)
  const dayBefore = new Date(cur.getTime() - 24 * HOUR_MS)
  const errorModels = new Set<string>()
  const errorsInBatch = new Map<string, number>()
  const costModels = new Set<string>()
  const pricedInBatch = new Map<string, number>()
  for (const r of records) {
    const at = Date.parse(r.timestamp)
    // a call the SDK blocked never reached the provider: not the provider's error (see migration 0011)
    if (r.status === 'error' && !blockedBySdk(r) && at > now.getTime() - HOUR_MS) {
      errorModels.add(r.model)
      errorsInBatch.set(r.model, (errorsInBatch.get(r.model) ?? 0) + 1)
    }
    if (r.cost !== null && !blockedBySdk(r) && at >= cur.getTime() && at < cur.getTime() + HOUR_MS) {
      costModels.add(r.model)
      pricedInBatch.set(r.model, (pricedInBatch.get(r.model) ?? 0) + 1)
    }
  }
  const models = [...new Set([...errorModels, ...costModels])]
  if (!models.length) return []
  const rows = await sql<RollupRow[]>`
    with r as (
      select model,
        coalesce(sum(requests - blocked) filter (where hour = ${cur}), 0) as cur_requests,
        coalesce(sum(errors - blocked) filter (where hour = ${cur}), 0) as cur_errors,
        coalesce(sum(requests - blocked) filter (where hour = ${prev}), 0) as prev_requests,
        coalesce(sum(errors - blocked) filter (where hour = ${prev}), 0) as prev_errors,
        coalesce(sum(cost_sum) filter (where hour = ${cur}), 0) as cur_cost,
        coalesce(sum(requests - unpriced - blocked_priced) filter (where hour = ${cur}), 0) as cur_priced,
        coalesce(sum(cost_sum) filter (where hour < ${cur}), 0) as base_cost,
        coalesce(sum(requests - unpriced - blocked_priced) filter (where hour < ${cur}), 0) as base_priced
      from request_rollups
      where project_id = ${projectId} and model = any(${models}) and hour >= ${dayBefore} and hour <= ${cur}
      group by model
    )
    select model, cur_requests::float8 as "curRequests", cur_errors::float8 as "curErrors",
      prev_requests::float8 as "prevRequests", prev_errors::float8 as "prevErrors",
      cur_cost::float8 as "curCost", cur_priced::float8 as "curPriced",
      base_cost::float8 as "baseCost", base_priced::float8 as "basePriced",
      cur_priced > 0 and base_priced > 0
        and cur_cost * base_priced * 100 > (100 + ${t.incidentCostSpikePercent}::numeric) * base_cost * cur_priced as "costSpike"
    from r`
  const weight = 1 - (now.getTime() - cur.getTime()) / HOUR_MS
  const signals: Signal[] = []
  for (const row of rows) {
    if (errorModels.has(row.model)) {
      const requests = row.curRequests + row.prevRequests * weight
      const errors = row.curErrors + row.prevErrors * weight
      if (requests >= t.incidentMinRequests && errors * 100 > t.incidentErrorRatePercent * requests) {
        const rate = errors / requests
        signals.push({
          projectId,
          type: 'error_rate',
          key: row.model,
          severity: rate >= 0.5 ? 'critical' : 'high',
          title: `Error rate ${(rate * 100).toFixed(1)} % on ${row.model} in the last hour (threshold ${t.incidentErrorRatePercent} %)`,
          count: errorsInBatch.get(row.model) ?? 1,
          at: now,
          metadata: { thresholdPercent: t.incidentErrorRatePercent, errorRate: rate, requests: Math.round(requests), errors: Math.round(errors) },
        })
      }
    }
    if (costModels.has(row.model) && row.costSpike && row.curPriced >= t.incidentMinRequests && row.basePriced >= t.incidentMinRequests) {
      const current = row.curCost / row.curPriced
      const baseline = row.baseCost / row.basePriced
      const risePercent = baseline > 0 ? (current / baseline - 1) * 100 : null
      signals.push({
        projectId,
        type: 'cost_spike',
        key: row.model,
        severity: risePercent === null || risePercent > 2 * Math.max(t.incidentCostSpikePercent, 50) ? 'high' : 'medium',
        title:
          risePercent === null
            ? `Cost per request on ${row.model} rose from $0 to $${current.toPrecision(3)}`
            : `Cost per request on ${row.model} ${risePercent.toFixed(0)} % above the daily average`,
        count: pricedInBatch.get(row.model) ?? 1,
        at: now,
        metadata: {
          thresholdPercent: t.incidentCostSpikePercent,
          avgCostPerRequest: current,
          dailyAvgCostPerRequest: baseline,
          risePercent,
          hourRequests: row.curPriced,
          baselineRequests: row.basePriced,
        },
      })
    }
  }
  return signals
}
