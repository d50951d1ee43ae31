import {
  projectParamsSchema,
  projectSettingsPatchSchema,
  projectSettingsResponseSchema,
  userSettingsPatchSchema,
  userSettingsSchema,
} from '@llmguard/shared'
import { projectIdOf, userIdOf } from '../auth/guard.js'
import { defineRoute, type RouteDef } from '../http/route.js'
import { projectSettingsBodySchema } from './body.js'
import type { SettingsService } from './service.js'

export function settingsRoutes({ settings, confirmPassword }: { settings: SettingsService; confirmPassword: (userId: string, password: string) => Promise<void> }): RouteDef[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/v1/settings/user',
      auth: 'user',
      summary: "The signed-in user's settings (role and createdAt are read-only)",
      tags: ['settings'],
      responses: { 200: userSettingsSchema },
      handler: ({ principal }) => settings.getUser(userIdOf(principal)),
    }),
    defineRoute({
      method: 'PATCH',
      path: '/v1/settings/user',
      auth: 'user',
      summary: 'Change name or email (the email needs currentPassword; 409 when it is taken)',
      tags: ['settings'],
      body: userSettingsPatchSchema,
      responses: { 200: userSettingsSchema },
      handler: async ({ principal, body }) => {
        const userId = userIdOf(principal)
        const { currentPassword, ...patch } = body
        if (patch.email !== undefined) await confirmPassword(userId, currentPassword!)
        return settings.patchUser(userId, patch)
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/projects/:id/settings',
      auth: 'user',
      projectParam: 'id',
      summary: "A project's settings, defaults included",
      tags: ['settings'],
      params: projectParamsSchema,
      responses: { 200: projectSettingsResponseSchema },
      handler: (ctx) => settings.getProject(projectIdOf(ctx)),
    }),
    defineRoute({
      method: 'PATCH',
      path: '/v1/projects/:id/settings',
      auth: 'user',
      projectParam: 'id',
      summary: "Change some of a project's settings; a change the SDK policy shows bumps its version",
      tags: ['settings'],
      params: projectParamsSchema,
      // projectSettingsPatchSchema, refusing a map key it would drop (documented as itself)
      body: projectSettingsBodySchema,
      documentedBody: projectSettingsPatchSchema,
      responses: { 200: projectSettingsResponseSchema },
      handler: (ctx) => settings.patchProject(projectIdOf(ctx), ctx.body),
    }),
  ]
}
