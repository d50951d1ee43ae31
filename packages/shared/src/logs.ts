import { z } from 'zod'
import { compareIso, DEFAULT_PAGE_LIMIT, isoDateSchema, MAX_PAGE_LIMIT, pageOf, queryInt, queryIntOr } from './common.js'
import { recordErrorSchema, riskReasonSchema } from './ingest.js'

/** `GET /v1/projects/:id/logs` — the seed's LogQuery plus status and userId. */
export const logQuerySchema = z
  .object({
    search: z.string().min(1).max(500).optional().describe('Case-insensitive substring of prompt or response; % _ \\ and quotes match literally'),
    model: z.string().min(1).max(200).optional(),
    minRiskScore: queryInt(0, 100).optional(),
    maxRiskScore: queryInt(0, 100).optional(),
    startDate: isoDateSchema.optional().describe('Inclusive, on the record timestamp'),
    endDate: isoDateSchema.optional().describe('Exclusive, on the record timestamp'),
    createdFrom: isoDateSchema
      .optional()
      .describe('Inclusive, on createdAt (when the collector stored the record): follows arrivals, also records an SDK shipped late'),
    status: z.enum(['success', 'error']).optional(),
    userId: z.string().min(1).max(256).optional(),
    policyViolation: z.enum(['true', 'false']).optional().describe('Only records that did (true) or did not (false) break the active policy'),
    sortBy: z.enum(['timestamp', 'latency', 'riskScore', 'createdAt']).default('timestamp'),
    sortOrder: z.enum(['asc', 'desc']).default('desc'),
    page: queryIntOr(1, 1_000_000, 1),
    limit: queryIntOr(1, MAX_PAGE_LIMIT, DEFAULT_PAGE_LIMIT),
  })
  .refine((q) => q.minRiskScore === undefined || q.maxRiskScore === undefined || q.minRiskScore <= q.maxRiskScore, {
    message: 'minRiskScore must not exceed maxRiskScore',
    path: ['minRiskScore'],
  })
  .refine((q) => !q.startDate || !q.endDate || compareIso(q.startDate, q.endDate) < 0, {
    message: 'startDate must be before endDate',
    path: ['startDate'],
  })
export type LogQuery = z.output<typeof logQuerySchema>
export type LogQueryInput = z.input<typeof logQuerySchema>

/** A stored request as search returns it: the seed's LogResult plus the fields below. */
export const logResultSchema = z
  .object({
    id: z.uuid(),
    prompt: z.string(),
    response: z.string(),
    timestamp: z.string(),
    latency: z.number().int(),
    model: z.string(),
    riskScore: z.number().int(),
    metadata: z.record(z.string(), z.unknown()),
    status: z.enum(['success', 'error']),
    tokens: z.number().int(),
    cost: z.number().nullable(),
    userId: z.string().nullable(),
    riskReasons: z.array(riskReasonSchema),
    policyViolation: z.record(z.string(), z.unknown()).nullable(),
    createdAt: z.string().describe('When the collector stored the record (timestamp is when the call started)'),
  })
  .meta({ id: 'LogResult' })
export type LogResult = z.infer<typeof logResultSchema>

/** `GET /v1/projects/:id/logs/:requestId` — every stored field. */
export const logDetailSchema = logResultSchema
  .extend({
    projectId: z.uuid(),
    requestedModel: z.string().nullable(),
    endpoint: z.string().nullable(),
    promptTokens: z.number().int().nullable(),
    completionTokens: z.number().int().nullable(),
    cachedTokens: z.number().int().nullable(),
    reasoningTokens: z.number().int().nullable(),
    timeToFirstToken: z.number().int().nullable(),
    stream: z.boolean().nullable(),
    error: recordErrorSchema.nullable(),
  })
  .meta({ id: 'LogDetail' })
export type LogDetail = z.infer<typeof logDetailSchema>

export const logPageSchema = pageOf(logResultSchema)
