import { idSchema, paginationQuerySchema, remediationPageSchema, remediationRequestSchema, remediationSchema } from '@llmguard/shared'
import { z } from 'zod'
import { defineRoute, reply, type RouteDef } from '../http/route.js'
import type { RemediationService } from './service.js'

const idParams = z.object({ id: idSchema })

export function remediationRoutes({ remediation }: { remediation: RemediationService }): RouteDef[] {
  return [
    defineRoute({
      method: 'POST',
      path: '/v1/incidents/:id/remediations',
      auth: 'user',
      summary: "Apply an action to the incident's project policy (parameters checked per action type); 201 with the action and its audit entry",
      tags: ['remediation'],
      params: idParams,
      body: remediationRequestSchema,
      responses: { 201: remediationSchema },
      handler: async ({ params, body, principal }) =>
        reply(201, await remediation.apply(principal, params.id, body)),
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/incidents/:id/remediations',
      auth: 'user',
      summary: "The incident's actions, newest first, with state (active, rolled_back, expired) and audit trail",
      tags: ['remediation'],
      params: idParams,
      query: paginationQuerySchema,
      responses: { 200: remediationPageSchema },
      handler: ({ params, query, principal }) => remediation.list(principal, params.id, query),
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/remediations/:id/rollback',
      auth: 'user',
      summary: 'Restore exactly the fields the action changed (409 ROLLBACK_CONFLICT when a later active action changed them)',
      tags: ['remediation'],
      params: idParams,
      responses: { 200: remediationSchema },
      handler: ({ params, principal }) => remediation.rollback(principal, params.id),
    }),
  ]
}
