import { randomUUID } from 'node:crypto'
import type { Sql } from '../db/connect.js'
import { AppError } from '../http/errors.js'
import type { Logger } from '../logger.js'
import * as store from './store.js'
import { SubjectWindow, WINDOW_MS, type Decision } from './window.js'

export const SYNC_INTERVAL_MS = 250
/** A sync this old means the database is unreachable: then each instance limits alone. */
const STALE_SYNC_MS = 5_000
const PRUNE_EVERY = 40

export interface RateLimiterDeps {
  sql: Sql
  logger: Logger
  /** Embedded database: one instance by definition, nothing to share, no database traffic. */
  embedded: boolean
  now?: () => number
}

/**
 * Sliding-window limits per subject (an API key, a user). Exact within an instance. Across
 * instances, each writes its per-second counts to Postgres every SYNC_INTERVAL_MS (not per
 * request) and reads the others'; between two syncs an instance spends at most its share
 * (1/N) of what the window has left, so N instances together overshoot only by what happens
 * inside one sync interval of an instance joining or a count arriving late.
 */
export class RateLimiter {
  readonly instanceId = randomUUID()
  private readonly windows = new Map<string, SubjectWindow>()
  /** Subjects seen for the first time: their remote counts are read before the first decision. */
  private readonly pending = new Map<string, Promise<void>>()
  private instances = 1
  private lastSync = 0
  private syncs = 0
  private timer: NodeJS.Timeout | undefined
  private syncing: Promise<void> | undefined
  private stopped = false
  private readonly now: () => number

  constructor(private readonly deps: RateLimiterDeps) {
    this.now = deps.now ?? Date.now
  }

  private get shared(): boolean {
    return !this.deps.embedded && !this.stopped
  }

  async start(): Promise<void> {
    if (!this.shared) return
    await this.sync()
    this.timer = setInterval(() => void this.sync(), SYNC_INTERVAL_MS)
    // the limiter never keeps the process alive
    this.timer.unref()
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    await this.syncing
    if (!this.deps.embedded) await store.leave(this.deps.sql, this.instanceId).catch(() => undefined)
  }

  /**
   * Admits or refuses a request of `subject` under `limit` per minute. Synchronous for a known
   * subject; the first request of a subject on this instance first reads the others' counts.
   */
  check(subject: string, limit: number): Decision | Promise<Decision> {
    const known = this.windows.get(subject)
    if (known || !this.shared) return this.take(subject, limit)
    let pending = this.pending.get(subject)
    if (!pending) {
      pending = this.pullOne(subject, limit).finally(() => this.pending.delete(subject))
      this.pending.set(subject, pending)
    }
    return pending.then(() => this.take(subject, limit))
  }

  /** `check`, turned into RateLimit-* headers, or a 429 RATE_LIMITED carrying them and Retry-After. */
  async enforce(subject: string, limit: number): Promise<Record<string, string>> {
    const decision = await this.check(subject, limit)
    const headers = {
      'ratelimit-limit': String(decision.limit),
      'ratelimit-remaining': String(decision.remaining),
      'ratelimit-reset': String(decision.resetSeconds),
    }
    if (decision.allowed) return headers
    throw new AppError(
      'RATE_LIMITED',
      `rate limit of ${decision.limit} requests per minute exceeded; retry in ${decision.resetSeconds} s`,
      { limit: decision.limit, retryAfter: decision.resetSeconds },
      { ...headers, 'retry-after': String(decision.resetSeconds) },
    )
  }

  private take(subject: string, limit: number): Decision {
    let window = this.windows.get(subject)
    if (!window) {
      window = new SubjectWindow()
      this.windows.set(subject, window)
    }
    const now = this.now()
    // the database has been out of reach for a while: limit alone rather than refuse everything
    if (this.shared && now - this.lastSync > STALE_SYNC_MS) window.share = Infinity
    return window.take(now, limit)
  }

  private instanceCount(): number {
    return this.now() - this.lastSync > STALE_SYNC_MS ? 1 : this.instances
  }

  private async pullOne(subject: string, limit: number): Promise<void> {
    const now = this.now()
    const window = new SubjectWindow()
    window.limit = limit
    try {
      const rows = await store.pullCounts(this.deps.sql, this.instanceId, [subject], Math.floor((now - WINDOW_MS) / 1000))
      window.synced(now, new Map(rows.map((r) => [r.second, r.count])), this.instanceCount())
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message }, 'rate limit: reading shared counts failed')
    }
    if (!this.windows.has(subject)) this.windows.set(subject, window)
  }

  /** One round: heartbeat, push this instance's changed counts, pull the others'. */
  sync(): Promise<void> {
    if (this.syncing || !this.shared) return this.syncing ?? Promise.resolve()
    this.syncing = this.syncOnce()
      .catch((err: Error) => {
        if (this.now() - this.lastSync > STALE_SYNC_MS) this.deps.logger.warn({ err: err.message }, 'rate limit sync failed; limiting per instance')
      })
      .finally(() => (this.syncing = undefined))
    return this.syncing
  }

  private async syncOnce(): Promise<void> {
    const { sql } = this.deps
    const now = this.now()
    const rows: store.CountRow[] = []
    const pushed = new Map<string, store.CountRow[]>()
    for (const [subject, window] of this.windows) {
      if (window.idle(now)) {
        this.windows.delete(subject)
        continue
      }
      const own: store.CountRow[] = []
      for (const second of window.dirty) own.push({ subject, second, count: window.localSeconds.get(second) ?? 0 })
      if (own.length) pushed.set(subject, own)
      rows.push(...own)
    }
    const fromSecond = Math.floor((now - WINDOW_MS) / 1000)
    const subjects = [...this.windows.keys()]
    const instances = await store.heartbeat(sql, this.instanceId)
    await store.pushCounts(sql, this.instanceId, rows)
    const remote = await store.pullCounts(sql, this.instanceId, subjects, fromSecond)
    const bySubject = new Map<string, Map<number, number>>()
    for (const row of remote) {
      let seconds = bySubject.get(row.subject)
      if (!seconds) bySubject.set(row.subject, (seconds = new Map()))
      seconds.set(row.second, row.count)
    }
    this.instances = instances
    this.lastSync = this.now()
    for (const subject of subjects) {
      const window = this.windows.get(subject)
      if (!window) continue
      // only the seconds pushed above are clean; requests admitted meanwhile stay dirty
      for (const row of pushed.get(subject) ?? []) if (window.localSeconds.get(row.second) === row.count) window.dirty.delete(row.second)
      window.synced(this.lastSync, bySubject.get(subject) ?? new Map(), instances)
    }
    if (++this.syncs % PRUNE_EVERY === 0) await store.prune(sql, fromSecond - 60)
  }
}
