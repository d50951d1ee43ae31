import { z } from 'zod'

export const MAX_TEXT_BYTES = 1024 * 1024
export const MAX_METADATA_BYTES = 16 * 1024
export const MAX_BATCH_RECORDS = 1000

const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8')
const boundedText = (name: string) =>
  z.string().refine((s) => s.length <= MAX_TEXT_BYTES && utf8Bytes(s) <= MAX_TEXT_BYTES, {
    message: `${name} must be at most 1 MB`,
  })
const tokenCount = z.number().int().min(0).max(100_000_000)

export const recordErrorSchema = z.object({
  type: z.string().max(200),
  message: z.string().max(10_000),
  status: z.number().int().min(100).max(599).optional(),
})

export const RECORD_ENDPOINTS = ['chat.completions', 'responses', 'embeddings', 'completions'] as const

/**
 * One LLM call as the SDK (or anyone) reports it: `POST /v1/llm/requests` and each element of
 * a batch. Defaults: response "", tokens 0 (or prompt + completion when the split is given),
 * status success, timestamp = receipt time.
 */
export const llmRecordSchema = z
  .object({
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
    timestamp: z.iso.datetime({ offset: true }).optional().describe('When the call started; default: receipt time'),
    endpoint: z.string().min(1).max(100).optional(),
    requestedModel: z.string().min(1).max(200).optional().describe('The model the app asked for, when a policy switched it'),
    timeToFirstToken: z.number().int().min(0).max(86_400_000).optional(),
    stream: z.boolean().optional(),
    userId: z.string().min(1).max(256).optional(),
    metadata: z
      .record(z.string(), z.unknown())
      .refine((m) => utf8Bytes(JSON.stringify(m)) <= MAX_METADATA_BYTES, { message: 'metadata must be at most 16 KB as JSON' })
      .optional(),
  })
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
