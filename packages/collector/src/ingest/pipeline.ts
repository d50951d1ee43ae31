import { randomUUID } from 'node:crypto'
import { computeCost, parseLlmRecord, scoreRisk, type LlmRecord, type ModelPrice, type RejectedRecord, type RiskReason } from '@llmguard/shared'
import type { Logger } from '../logger.js'
import { storable } from '../db/text.js'
import { metadataProblem } from './metadata.js'

/** What the pipeline knows about the project a batch belongs to. */
export interface IngestContext {
  projectId: string
  /** The project's owner: usage and plan limits are per user. */
  ownerId: string
  sensitiveKeywords: readonly string[]
  priceOverrides: Readonly<Record<string, ModelPrice>>
  receivedAt: Date
  requestId: string
  /**
   * Every string of the records is known to be storable (the body held no `\u` escape, see
   * http/body.ts escapeFree): the per-record repair walk is skipped.
   */
  storableText?: boolean
}

/** A record that passed validation, with its id and the collector's own fields. */
export interface ScoredRecord extends Omit<LlmRecord, 'id' | 'timestamp'> {
  id: string
  timestamp: string
  riskScore: number
  riskReasons: RiskReason[]
  cost: number | null
  /** What the active policy forbade about this call, or null. Set by annotators. */
  policyViolation: Record<string, unknown> | null
}

export interface Indexed<T> {
  index: number
  record: T
}

/** Plan limits: decides which of the valid records may be stored (the rest are rejected). */
export type MeterStep = (records: Indexed<LlmRecord & { id: string }>[], ctx: IngestContext) => Promise<{
  allowed: Indexed<LlmRecord & { id: string }>[]
  rejected: RejectedRecord[]
}>

/** Runs before storing, e.g. to flag records that break the active policy. */
export type Annotator = (records: ScoredRecord[], ctx: IngestContext) => Promise<void> | void

/** Runs after the records are stored (incident rules, usage counters…). Failures are logged, never returned. */
export type AfterStoreHook = (stored: ScoredRecord[], ctx: IngestContext) => Promise<void> | void

/** What a store step answers when every record it was given was new (a COPY stores all or none). */
export const ALL_NEW = Symbol('every record was new')

/**
 * Stores records, returning the ids that were new (the rest were duplicates of stored ones), or
 * ALL_NEW when every one was: no set of a batch's ids to build and look up on the usual path.
 */
export type StoreStep = (records: ScoredRecord[], ctx: IngestContext) => Promise<Set<string> | typeof ALL_NEW>

export interface IngestOutcome {
  stored: ScoredRecord[]
  duplicates: Indexed<ScoredRecord | (LlmRecord & { id: string })>[]
  rejected: RejectedRecord[]
}

/**
 * The ingest pipeline, in the seed's order: validate → meter → score → (annotate) → store →
 * after-store hooks. Features plug in through `meter`, `annotators` and `afterStore` without
 * editing this file.
 */
export class IngestPipeline {
  meter: MeterStep = async (records) => ({ allowed: records, rejected: [] })
  readonly annotators: Annotator[] = []
  readonly afterStore: AfterStoreHook[] = []

  constructor(
    private readonly store: StoreStep,
    private readonly logger: Logger,
  ) {}

  validate(raw: unknown[], ctx: IngestContext): { valid: Indexed<LlmRecord & { id: string }>[]; duplicates: IngestOutcome['duplicates']; rejected: RejectedRecord[] } {
    const valid: Indexed<LlmRecord & { id: string }>[] = []
    const duplicates: IngestOutcome['duplicates'] = []
    const rejected: RejectedRecord[] = []
    const seen = new Set<string>()
    raw.forEach((input, index) => {
      const problem = metadataProblem(input)
      if (problem) {
        rejected.push({ index, code: 'VALIDATION_ERROR', message: `${problem.path.join('.')}: ${problem.message}` })
        return
      }
      const parsed = parseLlmRecord(input)
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!
        const path = issue.path.map(String).join('.')
        rejected.push({ index, code: 'VALIDATION_ERROR', message: path ? `${path}: ${issue.message}` : issue.message })
        return
      }
      // the parsed record is a new object of ours: completed in place rather than copied
      const record = (ctx.storableText ? parsed.data : storable(parsed.data)) as LlmRecord & { id: string }
      // one spelling per id: a UUID in upper case is the same id, and PostgreSQL hands it back
      // in lower case (the batch's own dedup, the meter's and the store's lookups compare strings)
      record.id = record.id === undefined ? randomUUID() : record.id.toLowerCase()
      record.timestamp ??= ctx.receivedAt.toISOString()
      if (seen.has(record.id)) {
        duplicates.push({ index, record })
        return
      }
      seen.add(record.id)
      valid.push({ index, record })
    })
    return { valid, duplicates, rejected }
  }

  /** Adds the collector's fields to a validated record (in place: it is the pipeline's own object). */
  score(record: LlmRecord & { id: string }, ctx: IngestContext): ScoredRecord {
    const risk = scoreRisk(record, { sensitiveKeywords: ctx.sensitiveKeywords })
    const scored = record as ScoredRecord
    scored.timestamp = record.timestamp ?? ctx.receivedAt.toISOString()
    scored.riskScore = risk.riskScore
    scored.riskReasons = risk.riskReasons
    scored.cost = computeCost(record, ctx.priceOverrides)
    scored.policyViolation = null
    return scored
  }

  async ingest(raw: unknown[], ctx: IngestContext): Promise<IngestOutcome> {
    const { valid, duplicates, rejected } = this.validate(raw, ctx)
    const metered = valid.length ? await this.meter(valid, ctx) : { allowed: [], rejected: [] }
    rejected.push(...metered.rejected)
    if (metered.rejected.length && duplicates.length) refuseRepeats(valid, metered.rejected, duplicates, rejected)
    const scored = metered.allowed.map(({ index, record }) => ({ index, record: this.score(record, ctx) }))
    const records = scored.map((s) => s.record)
    for (const annotate of this.annotators) await annotate(records, ctx)
    const inserted = records.length ? await this.store(records, ctx) : ALL_NEW
    let stored: ScoredRecord[] = records
    if (inserted !== ALL_NEW) {
      stored = []
      for (const s of scored) {
        if (inserted.has(s.record.id)) stored.push(s.record)
        else duplicates.push(s)
      }
    }
    for (const hook of this.afterStore) {
      try {
        if (stored.length) await hook(stored, ctx)
      } catch (err) {
        this.logger.error({ err, requestId: ctx.requestId, projectId: ctx.projectId }, 'after-store hook failed')
      }
    }
    rejected.sort((a, b) => a.index - b.index)
    duplicates.sort((a, b) => a.index - b.index)
    return { stored, duplicates, rejected }
  }
}

/**
 * A record repeated within the batch whose first copy the meter refused was not stored either:
 * it gets the same refusal, not "duplicate" (which tells the SDK it is delivered and may go).
 * Moves those repeats from `duplicates` to `rejected`.
 */
function refuseRepeats(
  valid: Indexed<LlmRecord & { id: string }>[],
  refusals: RejectedRecord[],
  duplicates: IngestOutcome['duplicates'],
  rejected: RejectedRecord[],
): void {
  const idAt = new Map(valid.map((v) => [v.index, v.record.id]))
  const refused = new Map<string, RejectedRecord>()
  for (const r of refusals) {
    const id = idAt.get(r.index)
    if (id !== undefined) refused.set(id, r)
  }
  let kept = 0
  for (const d of duplicates) {
    const first = refused.get(d.record.id)
    if (first) rejected.push({ ...first, index: d.index })
    else duplicates[kept++] = d
  }
  duplicates.length = kept
}
