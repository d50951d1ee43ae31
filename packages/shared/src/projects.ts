import { z } from 'zod'
import { idSchema, paginationQuerySchema, pageOf } from './common.js'

export const projectNameSchema = z.string().trim().min(1).max(100)

export const projectSchema = z
  .object({
    id: z.uuid(),
    userId: z.uuid(),
    name: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'Project' })
export type Project = z.infer<typeof projectSchema>
export const projectPageSchema = pageOf(projectSchema)

export const createProjectBodySchema = z.strictObject({ name: projectNameSchema })
export type CreateProjectBody = z.input<typeof createProjectBodySchema>
export const updateProjectBodySchema = z.strictObject({ name: projectNameSchema })
export type UpdateProjectBody = z.input<typeof updateProjectBodySchema>

export const projectParamsSchema = z.object({ id: idSchema })
export const keyParamsSchema = z.object({ id: idSchema, keyId: idSchema })
export const projectListQuerySchema = paginationQuerySchema

/** A project API key as listed: metadata only, never the key. `revokedAt` null = active. */
export const apiKeySchema = z
  .object({
    id: z.uuid(),
    projectId: z.uuid(),
    name: z.string().nullable(),
    last4: z.string(),
    createdAt: z.string(),
    revokedAt: z.string().nullable(),
    rotatedFrom: z.uuid().nullable(),
  })
  .meta({ id: 'ApiKey' })
export type ApiKey = z.infer<typeof apiKeySchema>
export const apiKeyPageSchema = pageOf(apiKeySchema)

/** The answer to creating or rotating a key: the only time the key itself is shown. */
export const createdApiKeySchema = z
  .object({
    id: z.uuid(),
    name: z.string().nullable(),
    key: z.string(),
    last4: z.string(),
    createdAt: z.string(),
  })
  .meta({ id: 'CreatedApiKey' })
export type CreatedApiKey = z.infer<typeof createdApiKeySchema>

export const createKeyBodySchema = z
  .strictObject({ name: z.string().trim().min(1).max(100).optional() })
  .optional()
  .transform((v) => v ?? {})
export type CreateKeyBody = z.input<typeof createKeyBodySchema>

/** `lg_` + a UUID v4: the prefix tells keys from JWTs (and lets secret scanners find leaks). */
export const API_KEY_PATTERN = /^lg_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
export const isApiKey = (token: string) => token.startsWith('lg_')
