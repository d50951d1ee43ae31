import { idSchema, metricsQuerySchema, projectMetricsSchema } from '@llmguard/shared'
import { z } from 'zod'
import type { Sql } from '../db/connect.js'
import { defineRoute, type RouteDef } from '../http/route.js'
import { projectMetrics } from './store.js'

export function metricsRoutes(deps: { sql: Sql }): RouteDef[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/v1/projects/:id/metrics',
      auth: 'userOrApiKey',
      projectParam: 'id',
      summary: "A project's request, error, latency, token and cost totals for the last `days` UTC days (today included)",
      tags: ['metrics'],
      params: z.object({ id: idSchema }),
      query: metricsQuerySchema,
      responses: { 200: projectMetricsSchema },
      handler: ({ params, query }) => projectMetrics(deps.sql, params.id, query.days),
    }),
  ]
}
