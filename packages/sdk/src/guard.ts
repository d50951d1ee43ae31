import { performance } from 'node:perf_hooks'
import { randomUUID } from 'node:crypto'
import { DEFAULT_POLICY, llmRecordSchema, type LlmRecordInput, type Policy } from '@llmguard/shared'
import { LLMGuardError } from './errors.js'
import { defaultOutboxPath, keyTag, resolveOptions, type LLMGuardOptions, type ResolvedOptions } from './options.js'
import { FallbackStore } from './outbox/fallback.js'
import { SqliteStore } from './outbox/sqlite.js'
import { MemoryStore, type OutboxStore, type ParkedRow } from './outbox/store.js'
import { Pipeline, type PipelineStats } from './pipeline.js'
import { applyPolicy } from './policy/apply.js'
import { PolicyCache } from './policy/cache.js'
import { UserRateLimiter } from './policy/rate-limit.js'
import { errorRecord, newCall, streamRecord, successRecord, type CallInfo, type Endpoint } from './record/build.js'
import { boundMetadata, truncateUtf8, withFlag } from './record/text.js'
import { sharedRiskScorer } from './risk.js'
import { createUndiciTransport } from './transport/undici.js'
import type { Transport } from './transport/types.js'
import { isOpenAIClient, wrapOpenAI, type CallContext, type Outcome, type WrapHooks } from './wrap/openai.js'

export interface LLMGuardStats {
  /** Records not yet accepted by the collector (memory buffer + outbox). */
  queued: number
  /** Accepted by the collector (duplicates included: they are stored once). */
  sent: number
  /** Record sends that failed and were retried. */
  retried: number
  /** Dropped by the outbox cap (or after shutdown), never sent: a record counts here or in `sent`, not both. */
  dropped: number
  /** Refused by the collector for good and parked in the dead-letter table. */
  rejected: number
  /** Calls the policy blocked. */
  blocked: number
  /** Parked records in the dead-letter table now. */
  parked: number
  lastError: { code: string; message: string; at: string } | null
  outbox: 'sqlite' | 'memory'
  /**
   * Of `queued`, the records held in memory because the outbox file refused a write (a full
   * disk): they go back to it once it takes writes again. 0 otherwise.
   */
  spilled: number
  shipping: boolean
  /** The longest synchronous outbox operation so far (ms): SQLite's worst cost to the event loop. */
  maxOutboxOpMs: number
}

/** What `guard.record()` takes: a record in the collector's shape; `id` and `timestamp` are filled in. */
export type ManualRecord = LlmRecordInput

/**
 * The SDK: wraps OpenAI clients, records every call through a durable outbox, ships them to
 * the collector and applies the project's policy. LLMGuard's own failures never reach the
 * caller; only deliberate policy blocks do.
 */
export class LLMGuard {
  private readonly o: ResolvedOptions
  private readonly store: OutboxStore
  private readonly transport: Transport | undefined
  private readonly pipeline: Pipeline
  private readonly policyCache: PolicyCache
  private readonly limiter = new UserRateLimiter()
  private readonly riskScorer: ((prompt: string, model: string) => number) | undefined
  private readonly counters: PipelineStats & { blocked: number } = { sent: 0, retried: 0, rejected: 0, dropped: 0, blocked: 0, lastError: null, maxOutboxOpMs: 0 }
  private readonly warned = new Set<string>()
  private policyTimer: NodeJS.Timeout | undefined
  private shutdownPromise: Promise<void> | undefined
  /** The outbox's counts when shutdown closed it: what stats() reports from then on. */
  private countsAtClose: { stored: number; parked: number } | undefined
  private readonly hooks: WrapHooks

  constructor(options: LLMGuardOptions = {}) {
    this.o = resolveOptions(options)
    // disabled: a pass-through that touches no file, ships nothing and says nothing
    this.store = this.o.disabled ? new MemoryStore() : this.openStore()
    if (this.o.disabled) {
      // nothing to set up
    } else if (!this.o.apiKey) {
      this.warnOnce('no-key', 'no API key (LLMGUARD_API_KEY): records are kept in the outbox but not shipped')
    } else if (!isHttpUrl(this.o.endpoint)) {
      // e.g. LLMGUARD_ENDPOINT=localhost:3000: every batch would fail, with nothing said
      const from = options.endpoint === undefined || options.endpoint === null ? 'LLMGUARD_ENDPOINT' : 'the endpoint option'
      this.warnOnce(
        'bad-endpoint',
        `endpoint "${this.o.endpoint}" (${from}) is not an http(s) URL such as http://localhost:3000: records are kept in the outbox but not shipped`,
      )
    } else {
      this.transport = createUndiciTransport({ endpoint: this.o.endpoint, apiKey: this.o.apiKey, timeoutMs: this.o.requestTimeoutMs })
    }
    const t = this.transport
    this.pipeline = new Pipeline({
      store: this.store,
      send: t ? (json) => t.sendBatch(json) : undefined,
      stats: this.counters,
      durability: this.o.durability,
      maxRecords: this.o.maxOutboxRecords,
      writeDelayMs: this.o.writeDelayMs,
      shipDelayMs: this.o.shipDelayMs,
      pollMs: this.o.pollMs,
      onFatal: (code, message) => this.warnOnce(`fatal-${code}`, `the collector refused the batch (${code}: ${message}); shipping paused`),
      onInternalError: (where, err) => this.internalError(where, err),
    })
    this.policyCache = new PolicyCache(
      this.store,
      keyTag(this.o.endpoint, this.o.apiKey),
      t && this.o.policy ? (etag) => t.fetchPolicy(etag) : undefined,
      (code, message) => {
        this.counters.lastError = { code, message, at: new Date().toISOString() }
      },
      this.o.policy && !this.o.disabled,
      this.o.outbox === defaultOutboxPath(this.o.endpoint, this.o.apiKey),
      () => this.warnOnce('policy-key-refused', KEY_REFUSED),
    )
    this.riskScorer = this.o.riskScorer ?? sharedRiskScorer()
    if (t && this.o.policy) {
      void this.policyCache.refresh()
      this.policyTimer = setInterval(() => {
        void this.policyCache.refresh()
        this.limiter.prune(Date.now())
      }, this.o.policyRefreshMs)
      this.policyTimer.unref()
    }
    // rows an earlier run (or another process) left behind
    if (t) void this.pipeline.flush().catch((err) => this.internalError('startup flush', err))
    this.hooks = {
      prepare: (endpoint, body, context, defaults) => this.prepare(endpoint, body, context, defaults),
      finish: (call, outcome, endMark) => this.finish(call, outcome, endMark),
      // a blocked call is recorded too: in serverless mode it ships before the caller hears of the block
      blocked: () => (this.o.serverless ? this.serverlessFlush() : undefined),
      internalError: (where, err) => this.internalError(where, err),
    }
  }

  private openStore(): OutboxStore {
    if (this.o.outbox === ':memory:') return new MemoryStore()
    let file: SqliteStore
    try {
      file = new SqliteStore(this.o.outbox)
    } catch (err) {
      this.warnOnce('sqlite', `cannot open the outbox ${this.o.outbox} (${(err as Error).message}); records are kept in memory only`)
      return new MemoryStore()
    }
    return new FallbackStore(file, (err) => this.outboxWriteFailed(err))
  }

  /** A write to an outbox that opened fine failed (a full disk): the store keeps the records in memory meanwhile. */
  private outboxWriteFailed(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err)
    const code = (err as { code?: unknown } | null)?.code
    const what = typeof code === 'string' ? `${code}: ${message}` : message
    this.counters.lastError = { code: 'OUTBOX_ERROR', message: `outbox write: ${what}`, at: new Date().toISOString() }
    this.warnOnce(
      'sqlite-write',
      `cannot write the outbox ${this.o.outbox} (${what}); records are kept in memory${this.transport ? ' and shipped from there' : ''} until it can be written again, tried with a backoff`,
    )
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return
    this.warned.add(key)
    try {
      this.o.warn(message)
    } catch {
      // a broken logger is not the caller's problem either
    }
  }

  private internalError(where: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err)
    this.counters.lastError = { code: 'INTERNAL', message: `${where}: ${message}`, at: new Date().toISOString() }
    this.warnOnce(`internal-${where}`, `internal error in ${where}: ${message} (the call itself is unaffected)`)
  }

  /** The policy applied to calls now. */
  get policy(): Policy {
    return this.policyCache.current
  }

  /** Fetches the policy now (it is also refreshed on an interval). Never throws. */
  refreshPolicy(): Promise<void> {
    return this.policyCache.refresh()
  }

  /**
   * Records every `chat.completions`, `responses`, `embeddings` and `completions` call of this
   * client and applies the policy to it. Returns the same client, patched in place.
   */
  wrap<T extends object>(client: T, defaults?: CallContext): T {
    if (this.o.disabled) return client
    if (!isOpenAIClient(client)) {
      this.warnOnce(
        'wrap-not-a-client',
        'wrap(): this is not an openai client (it has no chat.completions.create); pass the client itself (new OpenAI()), not a part of it: nothing from this object is recorded',
      )
      return client
    }
    return wrapOpenAI(client, this.hooks, defaults)
  }

  private prepare(endpoint: Endpoint, body: unknown, context: CallContext | undefined, defaults: CallContext | undefined): { body: unknown; call?: CallInfo } {
    // after shutdown calls are no longer recorded, but the policy still holds: a service
    // draining its last requests keeps its blocks, rate limits and model switches
    const closed = this.shutdownPromise !== undefined
    if (closed) this.warnOnce('after-shutdown', AFTER_SHUTDOWN)
    if (typeof body !== 'object' || body === null) return { body }
    const startMark = performance.now()
    const b = body as Record<string, unknown>
    const userId =
      context?.userId ??
      defaults?.userId ??
      this.o.defaults?.userId ??
      (typeof b.user === 'string' && b.user ? b.user : typeof b.safety_identifier === 'string' && b.safety_identifier ? b.safety_identifier : undefined)
    const base = this.o.defaults?.metadata
    const metadata =
      context?.metadata || defaults?.metadata ? { ...base, ...defaults?.metadata, ...context?.metadata } : base
    let sent = b
    let requestedModel: string | undefined
    if (!this.policyCache.noop) {
      const policy = this.policyCache.current
      if (policy.blockOnRisk && !this.riskScorer) this.warnOnce('no-scorer', 'the policy has blockOnRisk on but no risk scorer is available')
      try {
        const applied = applyPolicy(policy, endpoint, b, userId, { limiter: this.limiter, now: Date.now(), scoreRisk: this.riskScorer })
        sent = applied.body
        requestedModel = applied.requestedModel
      } catch (err) {
        if (err instanceof LLMGuardError) {
          this.counters.blocked++
          if (!closed) this.recordBlocked(endpoint, b, userId, metadata, err, startMark)
          throw err
        }
        this.internalError('policy', err)
      }
    }
    if (closed) return { body: sent }
    const call = newCall(endpoint, sent, { startMark, userId, metadata, requestedModel })
    return { body: sent, call }
  }

  private recordBlocked(endpoint: Endpoint, body: Record<string, unknown>, userId: string | undefined, metadata: Record<string, unknown> | undefined, err: LLMGuardError, startMark: number): void {
    try {
      const call = newCall(endpoint, body, { startMark, userId, metadata: withFlag(boundMetadata(metadata), 'llmguardBlocked', err.code) })
      this.pipeline.enqueue(errorRecord(call, { type: err.code, message: err.message }, startMark))
    } catch (e) {
      this.internalError('record blocked', e)
    }
  }

  private finish(call: CallInfo, outcome: Outcome, endMark: number): void | Promise<void> {
    let record: LlmRecordInput
    switch (outcome.kind) {
      case 'success':
        record = successRecord(call, outcome.value, endMark)
        break
      case 'error':
        record = errorRecord(call, outcome.error, endMark, undefined, outcome.secret)
        break
      case 'stream': {
        const summary = outcome.acc.summary(outcome.aborted)
        if (outcome.error !== undefined) record = errorRecord(call, outcome.error, endMark, summary, outcome.secret)
        else if (summary.failure) record = errorRecord(call, summary.failure, endMark, summary, outcome.secret)
        else record = streamRecord(call, summary, endMark)
        break
      }
      case 'raw':
        record = successRecord(call, undefined, endMark)
        if (outcome.status >= 400) record.status = 'error'
        break
    }
    this.pipeline.enqueue(record)
    if (this.o.serverless) return this.serverlessFlush()
  }

  /**
   * Logs a call to any other provider by hand. Returns the record's id, or undefined when the
   * record does not match the contract (it is then counted as rejected, never thrown) or the
   * guard is shut down (counted as dropped).
   */
  record(input: ManualRecord): string | undefined {
    if (this.o.disabled) return undefined
    if (this.shutdownPromise) {
      // as for wrapped calls: nothing is recorded once shutdown() has begun
      this.warnOnce('after-shutdown', AFTER_SHUTDOWN)
      this.counters.dropped++
      return undefined
    }
    const reject = (where: string, message: string) => {
      this.counters.rejected++
      this.warnOnce('bad-record', `guard.record(): ${where}: ${message}`)
      return undefined
    }
    // from plain JavaScript anything may arrive: what is not a record is refused like any other
    // invalid one, before the size cuts below look at its fields
    if (typeof input !== 'object' || input === null || Array.isArray(input)) return reject('(record)', 'expected an object')
    try {
      const r: LlmRecordInput = { ...input, id: input.id ?? randomUUID(), timestamp: input.timestamp ?? new Date().toISOString() }
      if (typeof r.prompt === 'string') r.prompt = truncateUtf8(r.prompt)
      if (typeof r.response === 'string') r.response = truncateUtf8(r.response)
      if (typeof r.metadata === 'object' && r.metadata !== null && !Array.isArray(r.metadata)) r.metadata = boundMetadata(r.metadata)
      const parsed = llmRecordSchema.safeParse(r)
      if (!parsed.success) return reject(parsed.error.issues[0]?.path.join('.') ?? '(record)', parsed.error.issues[0]?.message ?? 'invalid')
      this.pipeline.enqueue(r)
      if (this.o.serverless) void this.serverlessFlush()
      return r.id
    } catch (err) {
      this.internalError('record', err)
      return undefined
    }
  }

  /** Writes pending records and ships what the outbox holds. Bounded; never throws. */
  flush(options: { timeoutMs?: number } = {}): Promise<void> {
    return this.boundedFlush(options.timeoutMs ?? 10_000, false)
  }

  /**
   * The flush after each call in serverless mode: the records reach the outbox (and the collector)
   * before the function freezes, but a failure's wait (Retry-After, a paused key) holds, as
   * between calls of a long-running process.
   */
  private serverlessFlush(): Promise<void> {
    return this.boundedFlush(this.o.serverlessFlushTimeoutMs, true)
  }

  private async boundedFlush(timeoutMs: number, holdBackoff: boolean): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        this.pipeline.flush(deadline, { holdBackoff }),
        // ref'd: a caller awaiting flush() (or shutdown()) keeps the process alive this long, the
        // shipper's sockets do not
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs)
        }),
      ])
    } catch (err) {
      this.internalError('flush', err)
    } finally {
      if (timer) clearTimeout(timer)
    }
  }

  /** Flushes within `timeoutMs` (default 5 s), stops every timer and closes the outbox. Idempotent. */
  shutdown(options: { timeoutMs?: number } = {}): Promise<void> {
    this.shutdownPromise ??= this.doShutdown(options.timeoutMs ?? 5_000)
    return this.shutdownPromise
  }

  private async doShutdown(timeoutMs: number): Promise<void> {
    const started = Date.now()
    if (this.policyTimer) clearInterval(this.policyTimer)
    this.policyTimer = undefined
    await this.flush({ timeoutMs })
    this.pipeline.stop()
    if (this.transport) {
      // a batch still in flight: its answer, within the bound. Past it, the request is aborted by
      // destroy() alone: undici's close() waits for requests in flight, and a destroy() after it
      // no longer aborts them (the send would end seconds after shutdown, against a closed file)
      if (!(await this.pipeline.sendsOver(started + timeoutMs)) && this.transport.destroy) this.transport.destroy()
      else {
        const left = Math.max(0, timeoutMs - (Date.now() - started))
        let timer: NodeJS.Timeout | undefined
        const closed = await Promise.race([
          this.transport.close().then(() => true),
          // ref'd, as flush's: the caller awaiting shutdown() is held this long at most
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(false), Math.min(left, 1_000))
          }),
        ])
        if (timer) clearTimeout(timer)
        // a policy fetch still in flight: abort it, the bound is up
        if (!closed) this.transport.destroy?.()
      }
    }
    // after the last answer: a record saved for the next start while still on its way would be
    // sent twice, or counted both as sent and as dropped
    await this.pipeline.saveSpilled(started + timeoutMs)
    // what stays in the file for the next start, reported by stats() once the file is closed
    this.countsAtClose = this.outboxCounts()
    this.pipeline.detach()
    try {
      this.store.close()
    } catch (err) {
      this.internalError('close', err)
    }
  }

  /** Rows in the outbox and in its dead-letter table; zero for what cannot be read now (busy). */
  private outboxCounts(): { stored: number; parked: number } {
    if (this.countsAtClose) return this.countsAtClose
    let stored = 0
    let parked = 0
    try {
      stored = this.store.count()
      parked = this.store.parkedCount()
    } catch {
      // busy: report what is in memory
    }
    return { stored, parked }
  }

  stats(): LLMGuardStats {
    const { stored, parked } = this.outboxCounts()
    const { lastError, sent, retried, dropped, rejected, blocked, maxOutboxOpMs } = this.counters
    return {
      queued: this.pipeline.pendingInMemory + stored,
      sent,
      retried,
      dropped,
      rejected,
      blocked,
      parked,
      lastError,
      outbox: this.store.kind,
      spilled: this.store.spilled ?? 0,
      shipping: this.transport !== undefined,
      maxOutboxOpMs: Math.round(maxOutboxOpMs * 100) / 100,
    }
  }

  /** The dead-letter table: records the collector refused for good, with the reason. */
  parked(limit = 100): ParkedRow[] {
    return this.store.listParked(limit)
  }

  /** Moves parked records back to the outbox to be sent again. */
  replayParked(seqs?: number[]): number {
    const n = this.store.replayParked(seqs)
    if (n) void this.flush()
    return n
  }

  /** For tests: whether any timer of this guard is still set. */
  get timersPending(): number {
    return this.pipeline.timersPending + (this.policyTimer ? 1 : 0)
  }
}

function isHttpUrl(endpoint: string): boolean {
  try {
    const { protocol } = new URL(endpoint)
    return protocol === 'http:' || protocol === 'https:'
  } catch {
    return false
  }
}

const AFTER_SHUTDOWN =
  'the guard is shut down: calls and guard.record() after shutdown() are not recorded (guard.record() counts them as dropped); the last known policy still applies to calls'
const KEY_REFUSED =
  'the collector refused this API key (revoked, or its project deleted): the policy fetched with it no longer applies to calls'
