import { z } from 'zod'
import { batchRequestSchema, batchResultSchema, ingestResultSchema, llmRecordSchema, MAX_BATCH_RECORDS } from '@llmguard/shared'
import type { Sql } from '../db/connect.js'
import { escapeFree } from '../http/body.js'
import { AppError } from '../http/errors.js'
import { defineRoute, reply, type RequestContext, type RouteDef } from '../http/route.js'
import type { ProjectContextCache } from './context.js'
import type { IngestContext, IngestPipeline } from './pipeline.js'
import { singleRecordSchema } from './metadata.js'
import { storedResult } from './store.js'

export interface IngestDeps {
  sql: Sql
  pipeline: IngestPipeline
  projects: ProjectContextCache
  /** When the plan limit resets (the next usage month) and how far off that is, for the 429 of a single record. */
  planLimitReset?: () => { resetAt: Date; retryAfterSeconds: number }
}

async function contextFor(deps: IngestDeps, ctx: RequestContext): Promise<IngestContext> {
  const projectId = ctx.projectId
  if (!projectId) throw new AppError('UNAUTHORIZED', 'an API key is required')
  const project = await deps.projects.get(projectId)
  if (!project) throw new AppError('INVALID_API_KEY', 'the API key names a project that no longer exists')
  return { projectId, ...project, receivedAt: new Date(), requestId: ctx.requestId, storableText: escapeFree(ctx.rawBody) }
}

export function ingestRoutes(deps: IngestDeps): RouteDef[] {
  return [
    defineRoute({
      method: 'POST',
      path: '/v1/llm/requests',
      auth: 'apiKey',
      summary: 'Log one LLM call (201; a repeated id answers 200 with the stored result)',
      tags: ['ingest'],
      // llmRecordSchema, refusing a metadata key it would drop (documented as itself)
      body: singleRecordSchema,
      documentedBody: llmRecordSchema,
      repairsText: true,
      responses: { 200: ingestResultSchema, 201: ingestResultSchema },
      handler: async (ctx) => {
        const ingest = await contextFor(deps, ctx)
        // validated by the route already; the pipeline's own validation of the parsed record is a cheap no-op
        const outcome = await deps.pipeline.ingest([ctx.body], ingest)
        const rejected = outcome.rejected[0]
        if (rejected) {
          if (rejected.code === 'PLAN_LIMIT_EXCEEDED') {
            const reset = deps.planLimitReset?.()
            if (!reset) throw new AppError('PLAN_LIMIT_EXCEEDED', rejected.message)
            throw new AppError('PLAN_LIMIT_EXCEEDED', rejected.message, { resetAt: reset.resetAt.toISOString() }, { 'Retry-After': String(reset.retryAfterSeconds) })
          }
          throw new AppError('VALIDATION_ERROR', rejected.message, { issues: [{ path: 'body', message: rejected.message }] })
        }
        const stored = outcome.stored[0]
        if (stored) {
          return reply(201, { id: stored.id, riskScore: stored.riskScore, riskReasons: stored.riskReasons, cost: stored.cost })
        }
        const duplicate = outcome.duplicates[0]!
        const existing = await storedResult(deps.sql, ingest.projectId, duplicate.record.id)
        if (!existing) throw new AppError('CONFLICT', 'the record was stored concurrently; retry to read it')
        return reply(200, existing)
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/llm/requests/batch',
      auth: 'apiKey',
      summary: 'Log up to 1000 LLM calls; each record is accepted, a duplicate, or rejected on its own',
      tags: ['ingest'],
      body: batchRequestSchema,
      // records are z.unknown() in batchRequestSchema: each is validated by itself in the pipeline
      documentedBody: batchRequestSchema.extend({ records: z.array(llmRecordSchema).min(1).max(MAX_BATCH_RECORDS) }),
      repairsText: true,
      responses: { 200: batchResultSchema },
      handler: async (ctx) => {
        const ingest = await contextFor(deps, ctx)
        const outcome = await deps.pipeline.ingest(ctx.body.records, ingest)
        return { accepted: outcome.stored.length, duplicates: outcome.duplicates.length, rejected: outcome.rejected }
      },
    }),
  ]
}
