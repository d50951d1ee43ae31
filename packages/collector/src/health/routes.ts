import { healthSchema, readinessSchema, type Readiness } from '@llmguard/shared'
import { z } from 'zod'
import { defineRoute, reply, type RouteDef } from '../http/route.js'

export interface HealthDeps {
  /** Checks the database and the schema version; never throws. */
  readiness(): Promise<Readiness>
  openapi(): unknown
}

export function healthRoutes(deps: HealthDeps): RouteDef[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/healthz',
      auth: 'none',
      summary: 'Liveness: the process is up',
      tags: ['health'],
      responses: { 200: healthSchema },
      handler: () => ({ status: 'ok' }),
    }),
    defineRoute({
      method: 'GET',
      path: '/readyz',
      auth: 'none',
      summary: 'Readiness: the database is reachable and every migration is applied (503 otherwise)',
      tags: ['health'],
      responses: { 200: readinessSchema, 503: readinessSchema },
      handler: async () => {
        const state = await deps.readiness()
        return reply(state.status === 'ready' ? 200 : 503, state)
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/openapi.json',
      auth: 'none',
      summary: 'This API as an OpenAPI 3.1 document',
      tags: ['health'],
      responses: { 200: z.record(z.string(), z.unknown()) },
      handler: () => deps.openapi(),
    }),
  ]
}
