import { llmRecordSchema } from '@llmguard/shared'
import { z } from 'zod'

/**
 * Why a record's metadata cannot be stored as sent, or undefined. A top-level key `__proto__`:
 * JSON.parse makes it an own key, but the record schema rebuilds `metadata` key by key by
 * assignment, which sets the copy's prototype instead, so the key vanished without a word.
 * It is refused by name instead. (Nested objects are not rebuilt: their keys are kept as sent.)
 */
export function metadataProblem(record: unknown): { path: string[]; message: string } | undefined {
  if (typeof record !== 'object' || record === null) return undefined
  const metadata = (record as { metadata?: unknown }).metadata
  if (typeof metadata !== 'object' || metadata === null || !Object.hasOwn(metadata, '__proto__')) return undefined
  return { path: ['metadata', '__proto__'], message: 'a metadata key named "__proto__" cannot be stored; rename it' }
}

/** The single-record route's body: llmRecordSchema, refusing what metadataProblem names. */
export const singleRecordSchema = z
  .unknown()
  .superRefine((input, ctx) => {
    const problem = metadataProblem(input)
    if (problem) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message })
  })
  .pipe(llmRecordSchema)
