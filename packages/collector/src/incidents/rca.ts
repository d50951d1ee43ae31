import type { Incident, IncidentRca } from '@llmguard/shared'
import type { Sql } from '../db/connect.js'
import { RcaFailure, type RcaClient } from '../integrations/openai.js'
import type { Logger } from '../logger.js'
import { gatherEvidence } from './evidence.js'
import { heuristicRca, rcaPrompt } from './heuristic.js'
import { claimAnalysis, findIncident, releaseAnalysis, spendRcaCall, storeAnalysis, type Claim } from './store.js'

export interface RcaWorkerOptions {
  sql: Sql
  logger: Logger
  /** The OpenAI client, or undefined without OPENAI_API_KEY (heuristic analyses only). */
  client?: RcaClient
  /** How often to look for analyses queued by other instances or left by a crash. */
  pollMs?: number
  /** How long a claim holds before another worker may take the analysis over. */
  leaseMs?: number
  /** OpenAI analyses per user (the project's owner) per 24 hours; past it, the heuristic one. */
  dailyLimit?: number
  now?: () => Date
}

/**
 * Attempts at one analysis request before the worker stops asking OpenAI and stores the
 * heuristic analysis: an answer that keeps failing to store, or a worker that keeps dying
 * mid-call, must not be paid for every lease forever.
 */
export const MAX_RCA_ATTEMPTS = 3

/** RCA_DAILY_LIMIT's default. */
export const DEFAULT_RCA_DAILY_LIMIT = 100

/** Analyses one incident: OpenAI's validated answer, or the heuristic one with the reason why not. */
export async function analyzeIncident(
  sql: Sql,
  incident: Incident,
  client: RcaClient | undefined,
  now: Date,
  signal?: AbortSignal,
  /** Skip OpenAI: the heuristic analysis with this reason. */
  fallback?: { fallbackReason: 'error' | 'budget'; fallbackDetail: string },
): Promise<IncidentRca> {
  const evidence = await gatherEvidence(sql, incident)
  if (fallback) return heuristicRca(incident, evidence, now, fallback)
  if (!client) return heuristicRca(incident, evidence, now, { fallbackReason: 'no_api_key' })
  const { system, user } = rcaPrompt(incident, evidence)
  try {
    const answer = await client.analyze(system, user, signal)
    return { ...answer, metadata: { ...answer.metadata, model: client.model, relatedRequests: evidence.related.length }, source: 'openai', generatedAt: now.toISOString() }
  } catch (err) {
    if (err instanceof RcaFailure && err.reason === 'aborted') throw err
    const reason = err instanceof RcaFailure ? err.reason : 'error'
    return heuristicRca(incident, evidence, now, { fallbackReason: reason, fallbackDetail: (err as Error).message, model: client.model })
  }
}

/**
 * Works through the pending analyses kept in Postgres (incident_analyses), one at a time, off
 * the ingest path: ingest only queues a row (in the statement that opens the incident) and
 * kicks the worker. On start it picks up whatever is pending, so a restart loses none; claims
 * expire, so a crashed instance's work is taken over; on stop the current claim is given back.
 */
export class RcaWorker {
  private readonly pollMs: number
  private readonly leaseMs: number
  private timer?: NodeJS.Timeout
  private loop?: Promise<void>
  private again = false
  private stopped = true
  private abort = new AbortController()
  private readonly now: () => Date

  constructor(readonly options: RcaWorkerOptions) {
    this.pollMs = options.pollMs ?? 5_000
    this.leaseMs = options.leaseMs ?? 120_000
    this.now = options.now ?? (() => new Date())
  }

  start(): void {
    this.stopped = false
    this.abort = new AbortController()
    this.timer = setInterval(() => this.kick(), this.pollMs)
    this.timer.unref()
    this.kick()
  }

  /** Runs the queue now (after an incident opened); coalesces concurrent kicks. */
  kick(): void {
    if (this.stopped) return
    if (this.loop) {
      this.again = true
      return
    }
    this.loop = this.drain().finally(() => {
      this.loop = undefined
      if (this.again && !this.stopped) {
        this.again = false
        this.kick()
      }
    })
  }

  /** Resolves when the queue is empty (tests, and the regenerate route). */
  async idle(): Promise<void> {
    while (this.loop) await this.loop
  }

  /**
   * Claims and analyses one incident now (the regenerate route); false when another worker holds
   * it, or a newer request came in meanwhile (the queue then runs that one).
   */
  async runNow(incidentId: string): Promise<boolean> {
    const claim = await claimAnalysis(this.options.sql, this.leaseMs, incidentId)
    if (!claim) return false
    const stored = await this.process(claim)
    if (!stored) this.kick()
    return stored
  }

  private async drain(): Promise<void> {
    try {
      while (!this.stopped) {
        const claim = await claimAnalysis(this.options.sql, this.leaseMs)
        if (!claim) return
        await this.process(claim)
      }
    } catch (err) {
      if (!this.stopped) this.options.logger.error({ err }, 'RCA queue failed; retrying at the next poll')
    }
  }

  /** True when the analysis was stored (it answered the incident's latest request). */
  private async process(claim: Claim): Promise<boolean> {
    const { sql, logger, client } = this.options
    const incident = await findIncident(sql, claim.incidentId)
    if (!incident) return false // deleted with its project: the pending row went with it
    try {
      const rca = await analyzeIncident(sql, incident, client, this.now(), this.abort.signal, client && (await this.withoutOpenAI(claim, incident)))
      const stored = await storeAnalysis(sql, claim, rca)
      // why OpenAI was not used (its error, the budget) is the operator's to see, not only the incident owner's
      const { fallbackReason, fallbackDetail } = rca.metadata as { fallbackReason?: string; fallbackDetail?: string }
      logger.info({ incidentId: incident.id, source: rca.source, fallbackReason, fallbackDetail, stored }, stored ? 'incident analysed' : 'incident analysed, but a newer analysis was asked for meanwhile: running that one')
      return stored
    } catch (err) {
      if (this.stopped) {
        await releaseAnalysis(sql, claim.incidentId).catch(() => undefined)
        return false
      }
      // the claim expires after leaseMs and the analysis is tried again
      logger.error({ err, incidentId: incident.id }, 'incident analysis failed')
      return false
    }
  }

  /** Why this analysis skips OpenAI (too many attempts, the owner's daily budget spent), or undefined. */
  private async withoutOpenAI(claim: Claim, incident: Incident): Promise<{ fallbackReason: 'error' | 'budget'; fallbackDetail: string } | undefined> {
    if (claim.attempts > MAX_RCA_ATTEMPTS) return { fallbackReason: 'error', fallbackDetail: `gave up on OpenAI after ${claim.attempts - 1} attempts that stored nothing` }
    const limit = this.options.dailyLimit ?? DEFAULT_RCA_DAILY_LIMIT
    if (!(await spendRcaCall(this.options.sql, incident.projectId, limit))) {
      return { fallbackReason: 'budget', fallbackDetail: `the project owner's ${limit} OpenAI analyses of the last 24 hours are spent (RCA_DAILY_LIMIT)` }
    }
    return undefined
  }

  /** Stops polling, aborts a running OpenAI call and gives its claim back. */
  async stop(): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    this.abort.abort()
    await this.idle()
  }
}
