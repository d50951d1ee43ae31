import {
  apiKeyPageSchema,
  createdApiKeySchema,
  createKeyBodySchema,
  createProjectBodySchema,
  keyParamsSchema,
  paginationQuerySchema,
  projectPageSchema,
  projectParamsSchema,
  projectSchema,
  updateProjectBodySchema,
} from '@llmguard/shared'
import { projectIdOf, userIdOf } from '../auth/guard.js'
import { defineRoute, reply, type RouteDef } from '../http/route.js'
import type { ProjectService } from './service.js'

export function projectRoutes({ projects }: { projects: ProjectService }): RouteDef[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/v1/projects',
      auth: 'user',
      summary: "The signed-in user's projects, newest first",
      tags: ['projects'],
      query: paginationQuerySchema,
      responses: { 200: projectPageSchema },
      handler: ({ principal, query }) => projects.list(userIdOf(principal), query.page, query.limit),
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/projects',
      auth: 'user',
      summary: 'Create a project',
      tags: ['projects'],
      body: createProjectBodySchema,
      responses: { 201: projectSchema },
      handler: async ({ principal, body }) => reply(201, await projects.create(userIdOf(principal), body.name)),
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/projects/:id',
      auth: 'user',
      projectParam: 'id',
      summary: 'One project (owner only)',
      tags: ['projects'],
      params: projectParamsSchema,
      responses: { 200: projectSchema },
      handler: (ctx) => projects.get(projectIdOf(ctx)),
    }),
    defineRoute({
      method: 'PATCH',
      path: '/v1/projects/:id',
      auth: 'user',
      projectParam: 'id',
      summary: 'Rename a project',
      tags: ['projects'],
      params: projectParamsSchema,
      body: updateProjectBodySchema,
      responses: { 200: projectSchema },
      handler: (ctx) => projects.rename(projectIdOf(ctx), ctx.body.name),
    }),
    defineRoute({
      method: 'DELETE',
      path: '/v1/projects/:id',
      auth: 'user',
      projectParam: 'id',
      summary: 'Delete a project with its keys, settings and data',
      tags: ['projects'],
      params: projectParamsSchema,
      responses: { 204: null },
      handler: async (ctx) => {
        await projects.remove(projectIdOf(ctx))
        return reply(204)
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/projects/:id/keys',
      auth: 'user',
      projectParam: 'id',
      summary: "A project's API keys (metadata only; revokedAt null = active)",
      tags: ['keys'],
      params: projectParamsSchema,
      query: paginationQuerySchema,
      responses: { 200: apiKeyPageSchema },
      handler: (ctx) => projects.listKeys(projectIdOf(ctx), ctx.query.page, ctx.query.limit),
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/projects/:id/keys',
      auth: 'user',
      projectParam: 'id',
      summary: 'Create an API key; the key itself is shown only in this answer',
      tags: ['keys'],
      params: projectParamsSchema,
      body: createKeyBodySchema,
      responses: { 201: createdApiKeySchema },
      handler: async (ctx) => reply(201, await projects.createKey(projectIdOf(ctx), ctx.body.name)),
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/projects/:id/keys/:keyId/rotate',
      auth: 'user',
      projectParam: 'id',
      summary: 'Replace a key with a new one; the old one is refused at once (409 if already revoked)',
      tags: ['keys'],
      params: keyParamsSchema,
      responses: { 201: createdApiKeySchema },
      handler: async (ctx) => reply(201, await projects.rotateKey(projectIdOf(ctx), ctx.params.keyId)),
    }),
    defineRoute({
      method: 'DELETE',
      path: '/v1/projects/:id/keys/:keyId',
      auth: 'user',
      projectParam: 'id',
      summary: 'Revoke a key',
      tags: ['keys'],
      params: keyParamsSchema,
      responses: { 204: null },
      handler: async (ctx) => {
        await projects.revokeKey(projectIdOf(ctx), ctx.params.keyId)
        return reply(204)
      },
    }),
  ]
}
