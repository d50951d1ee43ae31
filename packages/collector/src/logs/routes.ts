import { idSchema, logDetailSchema, logPageSchema, logQuerySchema } from '@llmguard/shared'
import { z } from 'zod'
import type { Sql } from '../db/connect.js'
import { notFound } from '../http/errors.js'
import { defineRoute, type RouteDef } from '../http/route.js'
import { getLog, searchLogs } from './store.js'

export function logsRoutes(deps: { sql: Sql }): RouteDef[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/v1/projects/:id/logs',
      auth: 'userOrApiKey',
      projectParam: 'id',
      summary: "Search a project's logged requests (filters, sorting, pages)",
      tags: ['logs'],
      params: z.object({ id: idSchema }),
      query: logQuerySchema,
      responses: { 200: logPageSchema },
      handler: ({ params, query }) => searchLogs(deps.sql, params.id, query),
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/projects/:id/logs/:requestId',
      auth: 'userOrApiKey',
      projectParam: 'id',
      summary: 'One logged request with every stored field',
      tags: ['logs'],
      params: z.object({ id: idSchema, requestId: idSchema }),
      responses: { 200: logDetailSchema },
      handler: async ({ params }) => (await getLog(deps.sql, params.id, params.requestId)) ?? Promise.reject(notFound('request')),
    }),
  ]
}
