import {
  detectResultSchema,
  idSchema,
  incidentDetailSchema,
  incidentPageSchema,
  incidentPatchSchema,
  incidentQuerySchema,
  incidentSchema,
} from '@llmguard/shared'
import { z } from 'zod'
import { defineRoute, reply, type RouteDef } from '../http/route.js'
import type { IncidentService } from './service.js'

const projectParams = z.object({ id: idSchema })
const incidentParams = z.object({ id: idSchema })

export function incidentRoutes(deps: { incidents: IncidentService }): RouteDef[] {
  const { incidents } = deps
  return [
    defineRoute({
      method: 'GET',
      path: '/v1/projects/:id/incidents',
      auth: 'user',
      projectParam: 'id',
      summary: "A project's incidents, most recently active first (status, type and date filters, pages)",
      tags: ['incidents'],
      params: projectParams,
      query: incidentQuerySchema,
      responses: { 200: incidentPageSchema },
      handler: ({ params, query }) => incidents.list(params.id, query),
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/projects/:id/incidents/detect',
      auth: 'user',
      projectParam: 'id',
      summary: 'Run anomaly detection for the last complete hour now (the hourly job does this for every project)',
      tags: ['incidents'],
      params: projectParams,
      responses: { 200: detectResultSchema },
      handler: ({ params }) => incidents.detect(params.id),
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/incidents/:id',
      auth: 'user',
      summary: 'One incident with its root-cause analysis and its last 20 related requests',
      tags: ['incidents'],
      params: incidentParams,
      responses: { 200: incidentDetailSchema },
      handler: ({ params, principal }) => incidents.get(principal, params.id),
    }),
    defineRoute({
      method: 'PATCH',
      path: '/v1/incidents/:id',
      auth: 'user',
      summary: 'Move an incident forward: open → acknowledged → resolved (backwards is 409 INVALID_TRANSITION)',
      tags: ['incidents'],
      params: incidentParams,
      body: incidentPatchSchema,
      responses: { 200: incidentSchema },
      handler: ({ params, body, principal }) => incidents.setStatus(principal, params.id, body.status),
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/incidents/:id/rca',
      auth: 'user',
      summary: 'Regenerate the root-cause analysis: 200 with the new analysis, or 202 while another instance is producing it',
      tags: ['incidents'],
      params: incidentParams,
      responses: { 200: incidentSchema, 202: incidentSchema },
      handler: async ({ params, principal }) => {
        const { incident, done } = await incidents.regenerate(principal, params.id)
        return done ? incident : reply(202, incident)
      },
    }),
  ]
}
