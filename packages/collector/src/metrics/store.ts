import type { ProjectMetrics } from '@llmguard/shared'
import type { Sql } from '../db/connect.js'
import { percentile } from './percentiles.js'

const DAY_MS = 86_400_000

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}

/**
 * Metrics for the last `days` UTC days (today included), read from the hourly rollups and the
 * daily latency histograms — never from raw rows, so the cost does not grow with volume.
 */
export async function projectMetrics(sql: Sql, projectId: string, days: number, now = new Date()): Promise<ProjectMetrics> {
  const todayStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())
  const start = new Date(todayStart - (days - 1) * DAY_MS)
  const end = new Date(todayStart + DAY_MS)
  const [rows, histogram] = await Promise.all([
    sql<{ day: string; model: string; requests: number; errors: number; latencySum: number; tokens: number; cost: number; unpriced: number }[]>`
      select to_char(hour, 'YYYY-MM-DD') as day, model,
        sum(requests)::float8 as requests, sum(errors)::float8 as errors,
        sum(latency_sum)::float8 as "latencySum", sum(tokens)::float8 as tokens,
        sum(cost_sum)::float8 as cost, sum(unpriced)::float8 as unpriced
      from request_rollups
      where project_id = ${projectId} and hour >= ${start} and hour < ${end}
      group by 1, 2`,
    sql<{ bucket: number; n: number }[]>`
      select bucket, sum(n)::float8 as n from latency_histograms
      where project_id = ${projectId} and day >= ${utcDay(start.getTime())}::date and day < ${utcDay(end.getTime())}::date
      group by bucket`,
  ])
  const daily = new Map<string, { requests: number; errors: number; latencySum: number; tokens: number; cost: number }>()
  for (let t = start.getTime(); t < end.getTime(); t += DAY_MS) {
    daily.set(utcDay(t), { requests: 0, errors: 0, latencySum: 0, tokens: 0, cost: 0 })
  }
  // a Map: model names come from ingest, and "constructor" or "__proto__" must count like any other
  const byModel = new Map<string, number>()
  let requests = 0
  let errors = 0
  let latencySum = 0
  let tokens = 0
  let cost = 0
  let unpriced = 0
  for (const r of rows) {
    requests += r.requests
    errors += r.errors
    latencySum += r.latencySum
    tokens += r.tokens
    cost += r.cost
    unpriced += r.unpriced
    byModel.set(r.model, (byModel.get(r.model) ?? 0) + r.requests)
    const d = daily.get(r.day)!
    d.requests += r.requests
    d.errors += r.errors
    d.latencySum += r.latencySum
    d.tokens += r.tokens
    d.cost += r.cost
  }
  const round = (x: number) => Math.round(x * 1e10) / 1e10
  return {
    totalRequests: requests,
    errorCount: errors,
    errorRate: requests ? errors / requests : 0,
    averageLatency: requests ? latencySum / requests : 0,
    totalTokens: tokens,
    estimatedCost: round(cost),
    modelBreakdown: Object.fromEntries(byModel),
    dailySummary: [...daily].map(([date, d]) => ({
      date,
      requests: d.requests,
      errors: d.errors,
      avgLatency: d.requests ? d.latencySum / d.requests : 0,
      tokens: d.tokens,
      cost: round(d.cost),
    })),
    p50Latency: percentile(histogram, 0.5),
    p95Latency: percentile(histogram, 0.95),
    p99Latency: percentile(histogram, 0.99),
    unpricedRequests: unpriced,
  }
}
