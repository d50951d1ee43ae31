import { projectSettingsPatchSchema } from '@llmguard/shared'
import { z } from 'zod'
import { metadataProblem } from '../ingest/metadata.js'

type Problem = { path: string[]; message: string }

const hasOwnProto = (value: unknown) => typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')

/**
 * Why a settings PATCH cannot be stored as sent: a top-level key `__proto__` in one of its maps.
 * JSON.parse makes it an own key, but zod rebuilds a record key by key by assignment, which sets
 * the copy's prototype instead, so the key and its value vanished and the answer was a 200. It
 * is refused by name, as ingest refuses it in a record's metadata (ingest/metadata.ts). Keys
 * nested deeper in `metadata` are kept as sent; the maps' values are strict objects (400 already).
 */
export function settingsPatchProblems(body: unknown): Problem[] {
  if (typeof body !== 'object' || body === null) return []
  const { priceOverrides, autoRemediation } = body as { priceOverrides?: unknown; autoRemediation?: unknown }
  const problems: Problem[] = []
  const metadata = metadataProblem(body)
  if (metadata) problems.push(metadata)
  if (hasOwnProto(priceOverrides)) problems.push({ path: ['priceOverrides', '__proto__'], message: 'a model named "__proto__" cannot be priced' })
  if (hasOwnProto(autoRemediation)) problems.push({ path: ['autoRemediation', '__proto__'], message: '"__proto__" is not an incident type' })
  return problems
}

/** The project settings PATCH body: projectSettingsPatchSchema, refusing what settingsPatchProblems names. */
export const projectSettingsBodySchema = z
  .unknown()
  .superRefine((input, ctx) => {
    for (const problem of settingsPatchProblems(input)) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message })
  })
  .pipe(projectSettingsPatchSchema)
