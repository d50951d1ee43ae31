import { z } from 'zod'
import { queryIntOr } from './common.js'

export const metricsQuerySchema = z.object({
  days: queryIntOr(1, 365, 30),
})

export const dailySummarySchema = z.object({
  date: z.string().describe('UTC day, YYYY-MM-DD'),
  requests: z.number().int(),
  errors: z.number().int(),
  avgLatency: z.number(),
  tokens: z.number().int(),
  cost: z.number(),
})
export type DailySummary = z.infer<typeof dailySummarySchema>

/**
 * `GET /v1/projects/:id/metrics?days=30` — the seed's ProjectMetrics plus latency percentiles and
 * the count of records whose cost is unknown (unpriced records add nothing to estimatedCost).
 */
export const projectMetricsSchema = z
  .object({
    totalRequests: z.number().int(),
    errorCount: z.number().int(),
    errorRate: z.number().min(0).max(1),
    averageLatency: z.number().describe('ms'),
    totalTokens: z.number().int(),
    estimatedCost: z.number().describe('USD'),
    modelBreakdown: z.record(z.string(), z.number().int()),
    dailySummary: z.array(dailySummarySchema),
    p50Latency: z.number().nullable(),
    p95Latency: z.number().nullable(),
    p99Latency: z.number().nullable(),
    unpricedRequests: z.number().int(),
  })
  .meta({ id: 'ProjectMetrics' })
export type ProjectMetrics = z.infer<typeof projectMetricsSchema>
