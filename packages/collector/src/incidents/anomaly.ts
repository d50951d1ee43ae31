import { ALL_MODELS_KEY, type IncidentType } from '@llmguard/shared'
import type { Db } from '../db/connect.js'
import type { Signal } from './store.js'

const HOUR_MS = 3_600_000
/** The trailing baseline: the 24 hours before the hour analysed (a day covers daily cycles). */
export const BASELINE_HOURS = 24
/** Fewer baseline hours with traffic than this and the statistics mean nothing: no verdict. */
export const MIN_BASELINE_HOURS = 6
export const SIGMAS = 3

/** One hour of a project's traffic (all models), from the rollups. */
export interface HourPoint {
  requests: number
  errors: number
  latencySum: number
  cost: number
}

export interface AnomalyFinding {
  type: Extract<IncidentType, `anomaly_${string}`>
  metric: 'latency' | 'error_rate' | 'volume' | 'cost'
  value: number
  mean: number
  stddev: number
  sigmas: number
}

function meanAndStddev(values: number[]): { mean: number; stddev: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length
  const variance = values.length > 1 ? values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1) : 0
  return { mean, stddev: Math.sqrt(variance) }
}

/**
 * A value beyond mean + 3σ of its baseline. σ is floored at 10 % of the mean (and an absolute
 * minimum per metric): a perfectly flat baseline would otherwise turn any wobble into a
 * thousand-sigma "anomaly". Only rises count: falling latency, errors or cost is good news.
 */
function check(
  type: AnomalyFinding['type'],
  metric: AnomalyFinding['metric'],
  value: number,
  baseline: number[],
  floor: number,
): AnomalyFinding | undefined {
  const { mean, stddev } = meanAndStddev(baseline)
  const effective = Math.max(stddev, Math.abs(mean) * 0.1, floor)
  const sigmas = (value - mean) / effective
  if (sigmas <= SIGMAS) return undefined
  return { type, metric, value, mean, stddev, sigmas }
}

/**
 * The 3-sigma rule on latency, error rate, volume and cost of one hour against the hours
 * before it (`baseline`: BASELINE_HOURS points, zero-filled). Minimum-volume guard: the hour
 * needs `minRequests` requests and the baseline MIN_BASELINE_HOURS hours with traffic.
 */
export function findAnomalies(hour: HourPoint, baseline: HourPoint[], minRequests: number): AnomalyFinding[] {
  const active = baseline.filter((h) => h.requests > 0)
  if (hour.requests < minRequests || active.length < MIN_BASELINE_HOURS) return []
  const findings = [
    check('anomaly_latency', 'latency', hour.latencySum / hour.requests, active.map((h) => h.latencySum / h.requests), 1),
    check('anomaly_error_rate', 'error_rate', hour.errors / hour.requests, active.map((h) => h.errors / h.requests), 0.01),
    check('anomaly_volume', 'volume', hour.requests, baseline.map((h) => h.requests), 1),
    check('anomaly_cost', 'cost', hour.cost, baseline.map((h) => h.cost), 1e-6),
  ]
  return findings.filter((f): f is AnomalyFinding => f !== undefined)
}

const LABEL: Record<AnomalyFinding['metric'], (v: number) => string> = {
  latency: (v) => `${Math.round(v)} ms average latency`,
  error_rate: (v) => `${(v * 100).toFixed(1)} % errors`,
  volume: (v) => `${Math.round(v)} requests`,
  cost: (v) => `$${v.toFixed(4)} spent`,
}

/** Reads the hour and its baseline from the rollups (≤ 25 hours × models rows, by primary key). */
export async function hourSeries(sql: Db, projectId: string, hour: Date): Promise<{ hour: HourPoint; baseline: HourPoint[] }> {
  const from = new Date(hour.getTime() - BASELINE_HOURS * HOUR_MS)
  const rows = await sql<(HourPoint & { at: Date })[]>`
    -- the SDK's own blocks never reached the provider (migration 0011)
    select hour as at, sum(requests - blocked)::float8 as requests, sum(errors - blocked)::float8 as errors,
      sum(latency_sum)::float8 as "latencySum", sum(cost_sum)::float8 as cost
    from request_rollups
    where project_id = ${projectId} and hour >= ${from} and hour <= ${hour}
    group by hour`
  const byHour = new Map(rows.map((r) => [r.at.getTime(), r]))
  const point = (t: number): HourPoint => {
    const r = byHour.get(t)
    return r ? { requests: r.requests, errors: r.errors, latencySum: r.latencySum, cost: r.cost } : { requests: 0, errors: 0, latencySum: 0, cost: 0 }
  }
  const baseline: HourPoint[] = []
  for (let t = from.getTime(); t < hour.getTime(); t += HOUR_MS) baseline.push(point(t))
  return { hour: point(hour.getTime()), baseline }
}

/** Projects with traffic in the hour (the rollups' hour index). */
export async function activeProjects(sql: Db, hour: Date): Promise<string[]> {
  const rows = await sql<{ projectId: string }[]>`select distinct project_id as "projectId" from request_rollups where hour = ${hour}`
  return rows.map((r) => r.projectId)
}

/** Anomaly detection for one project and one complete hour, as incident signals. */
export async function anomalySignals(sql: Db, projectId: string, hour: Date, minRequests: number, now: Date): Promise<Signal[]> {
  const series = await hourSeries(sql, projectId, hour)
  const end = new Date(hour.getTime() + HOUR_MS)
  const window = `${hour.toISOString().slice(11, 16)}–${end.toISOString().slice(11, 16)} UTC`
  return findAnomalies(series.hour, series.baseline, minRequests).map((f) => ({
    projectId,
    type: f.type,
    key: ALL_MODELS_KEY,
    severity: f.sigmas >= 6 ? 'high' : 'medium',
    title: `Anomaly: ${LABEL[f.metric](f.value)} in ${window} vs ${LABEL[f.metric](f.mean)} normally (${f.sigmas.toFixed(1)}σ)`,
    count: 1,
    at: now,
    metadata: {
      metric: f.metric,
      hour: hour.toISOString(),
      value: f.value,
      baselineMean: f.mean,
      baselineStddev: f.stddev,
      sigmas: f.sigmas,
      baselineHours: BASELINE_HOURS,
      hourRequests: series.hour.requests,
    },
  }))
}
