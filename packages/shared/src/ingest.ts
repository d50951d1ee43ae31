import { z } from 'zod'
import { isoDateSchema, MAX_METADATA_DEPTH, nestedWithin, timeProblem } from './common.js'

export const MAX_TEXT_BYTES = 1024 * 1024
export const MAX_METADATA_BYTES = 16 * 1024
export const MAX_BATCH_RECORDS = 1000

const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8')
/** At most `max` bytes as UTF-8. A UTF-16 code unit takes at most 3 bytes: only longer strings need counting. */
const withinBytes = (s: string, max: number) => s.length * 3 <= max || (s.length <= max && utf8Bytes(s) <= max)
const boundedText = (name: string) =>
  z.string().refine((s) => withinBytes(s, MAX_TEXT_BYTES), {
    message: `${name} must be at most 1 MB`,
  })
const tokenCount = z.number().int().min(0).max(100_000_000)

export const recordErrorSchema = z.object({
  type: z.string().max(200),
  message: z.string().max(10_000),
  status: z.number().int().min(100).max(599).optional(),
})

// the regex of the record's id (z.uuid()), tested directly by parseLlmRecord's fast path (which
// checks the timestamp with timeProblem)
const RECORD_ID = z.regexes.uuid()

export const RECORD_ENDPOINTS = ['chat.completions', 'responses', 'embeddings', 'completions'] as const

const llmRecordShape = {
  id: z.uuid().optional().describe('Client-generated UUID, the idempotency key (unique per project)'),
  prompt: boundedText('prompt'),
  response: boundedText('response').default(''),
  model: z.string().min(1).max(200),
  latency: z.number().int().min(0).max(86_400_000).describe('Milliseconds'),
  tokens: tokenCount.optional(),
  promptTokens: tokenCount.optional(),
  completionTokens: tokenCount.optional(),
  cachedTokens: tokenCount.optional().describe('Part of promptTokens'),
  reasoningTokens: tokenCount.optional().describe('Part of completionTokens'),
  status: z.enum(['success', 'error']).default('success'),
  error: recordErrorSchema.optional(),
  timestamp: isoDateSchema.optional().describe('When the call started (1970–9999 UTC, offset within ±15:59, at most 9 fraction digits); default: receipt time'),
  endpoint: z.string().min(1).max(100).optional(),
  requestedModel: z.string().min(1).max(200).optional().describe('The model the app asked for, when a policy switched it'),
  timeToFirstToken: z.number().int().min(0).max(86_400_000).optional(),
  stream: z.boolean().optional(),
  userId: z.string().min(1).max(256).optional(),
  metadata: z
    .record(z.string(), z.unknown())
    .refine((m) => nestedWithin(m, MAX_METADATA_DEPTH), { message: `metadata must nest at most ${MAX_METADATA_DEPTH} levels deep`, abort: true })
    .refine((m) => withinBytes(JSON.stringify(m), MAX_METADATA_BYTES), { message: 'metadata must be at most 16 KB as JSON' })
    .optional(),
}

/**
 * One LLM call as the SDK (or anyone) reports it: `POST /v1/llm/requests` and each element of
 * a batch. Defaults: response "", tokens 0 (or prompt + completion when the split is given),
 * status success, timestamp = receipt time.
 */
export const llmRecordSchema = z
  .object(llmRecordShape)
  .superRefine((r, ctx) => {
    if (r.cachedTokens !== undefined && r.promptTokens !== undefined && r.cachedTokens > r.promptTokens) {
      ctx.addIssue({ code: 'custom', path: ['cachedTokens'], message: 'cachedTokens is part of promptTokens and cannot exceed it' })
    }
    if (r.reasoningTokens !== undefined && r.completionTokens !== undefined && r.reasoningTokens > r.completionTokens) {
      ctx.addIssue({ code: 'custom', path: ['reasoningTokens'], message: 'reasoningTokens is part of completionTokens and cannot exceed it' })
    }
  })
  .transform((r) => ({
    ...r,
    tokens: r.tokens ?? ((r.promptTokens ?? 0) + (r.completionTokens ?? 0)),
  }))
  .meta({ id: 'LlmRecord' })

/**
 * `llmRecordSchema.safeParse`, fast for the records that are valid. Ingest validates every
 * record of every batch, and a zod object with refinements and a transform cost about as much
 * as the rest of the ingest path's JavaScript together. This checks the same rules by hand and
 * builds the same output (with the fields not given present as undefined, one shape for every
 * record); anything it does not accept outright (a bad value, a non-object, an odd metadata
 * key) goes through the schema itself, so every error is the schema's own.
 * For JSON input (what a request body parses to); `test/ingest.test.ts` holds the two to the
 * same answers.
 */
export function parseLlmRecord(input: unknown): { success: true; data: LlmRecord } | { success: false; error: z.ZodError } {
  const data = acceptLlmRecord(input)
  if (data) return { success: true, data }
  return llmRecordSchema.safeParse(input) as { success: true; data: LlmRecord } | { success: false; error: z.ZodError }
}

type Obj = Record<string, unknown>

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const isInt = (v: unknown, min: number, max: number): v is number => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max
const isText = (v: unknown, min: number, max: number): v is string => typeof v === 'string' && v.length >= min && v.length <= max
const optionalInt = (v: unknown, min: number, max: number) => v === undefined || isInt(v, min, max)
const optionalText = (v: unknown, min: number, max: number) => v === undefined || isText(v, min, max)

function acceptError(v: unknown): LlmRecord['error'] | null {
  if (!isObject(v) || !isText(v.type, 0, 200) || !isText(v.message, 0, 10_000) || !optionalInt(v.status, 100, 599)) return null
  return v.status === undefined ? { type: v.type, message: v.message } : { type: v.type, message: v.message, status: v.status }
}

function acceptMetadata(v: unknown): Record<string, unknown> | null {
  if (!isObject(v) || Object.getPrototypeOf(v) !== Object.prototype || Object.hasOwn(v, '__proto__')) return null
  // the schema's output is a copy of equal value; the parsed body's own object does as well.
  // Most metadata is a few short fields, far below the limit by a bound that needs no JSON text
  // (serialising it only to measure cost ~1 µs a record); the rest is measured exactly.
  if (jsonBytesBound(v, MAX_METADATA_BYTES) <= MAX_METADATA_BYTES) return v
  // too deep to serialise safely: the schema says why
  if (!nestedWithin(v, MAX_METADATA_DEPTH)) return null
  return withinBytes(JSON.stringify(v), MAX_METADATA_BYTES) ? v : null
}

/** Past this depth `jsonBytesBound` gives up (and the exact measure decides). */
const BOUND_DEPTH = 32

/**
 * An upper bound of the UTF-8 size of `JSON.stringify(v)`, for what JSON.parse makes (plain
 * objects, arrays, strings, finite numbers, booleans, null); Infinity for anything else (a
 * `toJSON`, a BigInt…), once past `limit`, or deeper than BOUND_DEPTH. A UTF-16 unit of a string
 * takes at most 6 bytes as JSON (`\u001f`, an escaped lone surrogate); a number at most 24
 * (`-1.2345678901234567e-308`).
 */
export function jsonBytesBound(v: unknown, limit: number, depth = 0): number {
  switch (typeof v) {
    case 'string':
      return 2 + 6 * v.length
    case 'number':
      return 24
    case 'boolean':
      return 5
    case 'object': {
      if (v === null) return 4
      if (depth >= BOUND_DEPTH) return Infinity
      let n = 2
      if (Array.isArray(v)) {
        for (const item of v) {
          n += 1 + jsonBytesBound(item, limit, depth + 1)
          if (n > limit) return Infinity
        }
        return n
      }
      if (Object.getPrototypeOf(v) !== Object.prototype) return Infinity
      for (const key in v) {
        n += 4 + 6 * key.length + jsonBytesBound((v as Obj)[key], limit, depth + 1)
        if (n > limit) return Infinity
      }
      return n
    }
    default:
      // undefined is left out of an object, null in an array: within the bound of null; a
      // function, symbol or BigInt only from a caller that is not parsing JSON
      return v === undefined ? 4 : Infinity
  }
}

/** parseLlmRecord's fast path: the schema's output for a record it accepts outright, else null (the schema decides). */
export function acceptLlmRecord(r: unknown): LlmRecord | null {
  if (!isObject(r) || Object.getPrototypeOf(r) !== Object.prototype) return null
  const { id, prompt, response, model, latency, tokens, promptTokens, completionTokens, cachedTokens, reasoningTokens, status, timestamp } = r
  if (typeof prompt !== 'string' || !withinBytes(prompt, MAX_TEXT_BYTES)) return null
  if (response !== undefined && (typeof response !== 'string' || !withinBytes(response, MAX_TEXT_BYTES))) return null
  if (!isText(model, 1, 200) || !isInt(latency, 0, 86_400_000)) return null
  if (!optionalInt(tokens, 0, 100_000_000) || !optionalInt(promptTokens, 0, 100_000_000) || !optionalInt(completionTokens, 0, 100_000_000)) return null
  if (!optionalInt(cachedTokens, 0, 100_000_000) || !optionalInt(reasoningTokens, 0, 100_000_000)) return null
  if (cachedTokens !== undefined && promptTokens !== undefined && (cachedTokens as number) > (promptTokens as number)) return null
  if (reasoningTokens !== undefined && completionTokens !== undefined && (reasoningTokens as number) > (completionTokens as number)) return null
  if (status !== undefined && status !== 'success' && status !== 'error') return null
  if (!optionalText(r.endpoint, 1, 100) || !optionalText(r.requestedModel, 1, 200) || !optionalText(r.userId, 1, 256)) return null
  if (!optionalInt(r.timeToFirstToken, 0, 86_400_000) || (r.stream !== undefined && typeof r.stream !== 'boolean')) return null
  if (id !== undefined && (typeof id !== 'string' || !RECORD_ID.test(id))) return null
  if (timestamp !== undefined && (typeof timestamp !== 'string' || timeProblem(timestamp) !== undefined)) return null
  const error = r.error === undefined ? undefined : acceptError(r.error)
  if (error === null) return null
  const metadata = r.metadata === undefined ? undefined : acceptMetadata(r.metadata)
  if (metadata === null) return null
  // the schema's output (unknown keys stripped, defaults filled in) in one fixed shape: a field
  // that was not given is undefined here where the schema leaves the key out
  return {
    id: id as string | undefined,
    prompt,
    response: (response as string | undefined) ?? '',
    model,
    latency,
    tokens: (tokens as number | undefined) ?? ((promptTokens as number | undefined) ?? 0) + ((completionTokens as number | undefined) ?? 0),
    promptTokens: promptTokens as number | undefined,
    completionTokens: completionTokens as number | undefined,
    cachedTokens: cachedTokens as number | undefined,
    reasoningTokens: reasoningTokens as number | undefined,
    status: (status as 'success' | 'error' | undefined) ?? 'success',
    error,
    timestamp: timestamp as string | undefined,
    endpoint: r.endpoint as string | undefined,
    requestedModel: r.requestedModel as string | undefined,
    timeToFirstToken: r.timeToFirstToken as number | undefined,
    stream: r.stream as boolean | undefined,
    userId: r.userId as string | undefined,
    metadata,
  }
}

/** What a client sends (before defaults). */
export type LlmRecordInput = z.input<typeof llmRecordSchema>
/** A validated record with defaults applied. */
export type LlmRecord = z.output<typeof llmRecordSchema>

export const riskReasonSchema = z.object({
  code: z.string(),
  points: z.number().int(),
  detail: z.string(),
})
export type RiskReason = z.infer<typeof riskReasonSchema>

/** `POST /v1/llm/requests` → 201 (or 200 for a duplicate id, with the stored result). */
export const ingestResultSchema = z.object({
  id: z.uuid(),
  riskScore: z.number().int().min(0).max(100),
  riskReasons: z.array(riskReasonSchema),
  cost: z.number().nullable(),
})
export type IngestResult = z.infer<typeof ingestResultSchema>

/** `POST /v1/llm/requests/batch`: each record is validated on its own; bad ones are rejected by index. */
export const batchRequestSchema = z.object({
  records: z.array(z.unknown()).min(1).max(MAX_BATCH_RECORDS),
})

export const rejectedRecordSchema = z.object({
  index: z.number().int().min(0),
  code: z.string(),
  message: z.string(),
})
export type RejectedRecord = z.infer<typeof rejectedRecordSchema>

export const batchResultSchema = z.object({
  accepted: z.number().int().min(0),
  duplicates: z.number().int().min(0),
  rejected: z.array(rejectedRecordSchema),
})
export type BatchResult = z.infer<typeof batchResultSchema>
