import { createHmac, randomUUID } from 'node:crypto'
import { API_KEY_PATTERN, DEFAULT_POLICY } from '@llmguard/shared'
import type { Sql } from '../db/connect.js'
import type { Logger } from '../logger.js'
import { findActiveKeyByHash } from './store.js'

/** A verified API key, as the auth guard and the rate limiter see it. */
export interface VerifiedKey {
  keyId: string
  projectId: string
  userId: string
  /** The project's requests-per-minute limit for each of its keys. */
  rateLimit: number
}

/** `lg_` + a UUID v4: 122 random bits, so a keyed hash (not a slow KDF) is the right store. */
export const generateApiKey = (): string => `lg_${randomUUID()}`

export const hashApiKey = (pepper: string, key: string): string => createHmac('sha256', pepper).update(key).digest('hex')

const CHANNEL = 'llmguard_api_keys'
/** With LISTEN, an entry is dropped by the notification of any change; the TTL is a backstop. */
const TTL_LISTENING_MS = 60_000
/** Without LISTEN (a transaction-mode pooler), entries live under the 1 s revocation bound. */
const TTL_POLLING_MS = 900
const MAX_ENTRIES = 10_000

interface Entry {
  key: VerifiedKey
  expires: number
}

export interface KeyVerifierDeps {
  sql: Sql
  pepper: string
  logger: Logger
  /** The embedded database is one instance: invalidation stays in-process, no LISTEN. */
  embedded: boolean
}

/**
 * Verifies API keys with a per-instance cache. Any change that can make a cached key wrong
 * (revoke, rotate, project deletion, a new rate limit) calls `invalidate()`: this instance drops
 * its cache at once and, on real Postgres, NOTIFY tells every other instance to do the same.
 */
export class KeyVerifier {
  private readonly cache = new Map<string, Entry>()
  /** Key id → the rate limit seen by its latest verification (read by the rate limiter right after). */
  private readonly limits = new Map<string, number>()
  /** Bumped by every invalidation: a lookup that started before one must not fill the cache. */
  private generation = 0
  private ttlMs: number
  private listener: { unlisten(): Promise<void> } | undefined
  private listening: Promise<void> | undefined
  private stopped = false

  constructor(private readonly deps: KeyVerifierDeps) {
    // the embedded database is one instance: every invalidation happens in this process
    this.ttlMs = deps.embedded ? TTL_LISTENING_MS : TTL_POLLING_MS
  }

  /**
   * Subscribes to invalidations on real Postgres, lazily on the first key verified: LISTEN holds
   * a connection of its own, which an instance that never sees a key need not spend. Until it is
   * established (or when it fails, e.g. behind a transaction-mode pooler) entries live < 1 s.
   */
  private listen(): Promise<void> {
    return this.deps.sql
      .listen(
        CHANNEL,
        () => this.clear(),
        // (re)connected: notifications may have been missed meanwhile
        () => this.clear(),
      )
      .then(
        (listener) => {
          if (this.stopped) return void listener.unlisten().catch(() => undefined)
          this.listener = listener
          this.ttlMs = TTL_LISTENING_MS
        },
        (err: Error) => {
          this.deps.logger.warn({ err: err.message }, 'LISTEN unavailable: API key cache entries live under 1 s')
        },
      )
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.listening
    const listener = this.listener
    this.listener = undefined
    await listener?.unlisten().catch(() => undefined)
  }

  /** The key's identity, or undefined when it is malformed, unknown or revoked. */
  async verify(key: string): Promise<VerifiedKey | undefined> {
    if (!API_KEY_PATTERN.test(key)) return undefined
    if (!this.deps.embedded && !this.stopped) this.listening ??= this.listen()
    const hash = hashApiKey(this.deps.pepper, key)
    const now = Date.now()
    const hit = this.cache.get(hash)
    if (hit && hit.expires > now) return this.seen(hit.key)
    const generation = this.generation
    const row = await findActiveKeyByHash(this.deps.sql, hash, DEFAULT_POLICY.rateLimit)
    if (!row) return undefined
    const verified: VerifiedKey = { keyId: row.key_id, projectId: row.project_id, userId: row.user_id, rateLimit: row.rate_limit }
    if (generation === this.generation) {
      if (this.cache.size >= MAX_ENTRIES) this.cache.clear()
      this.cache.set(hash, { key: verified, expires: now + this.ttlMs })
    }
    return this.seen(verified)
  }

  /** The rate limit of a key id as its latest verification saw it (the rate limiter's view). */
  rateLimitOf(keyId: string): number {
    return this.limits.get(keyId) ?? DEFAULT_POLICY.rateLimit
  }

  private seen(key: VerifiedKey): VerifiedKey {
    if (this.limits.size >= MAX_ENTRIES && !this.limits.has(key.keyId)) this.limits.clear()
    this.limits.set(key.keyId, key.rateLimit)
    return key
  }

  /** Call after a change commits: drops this instance's cache and tells the others. */
  async invalidate(): Promise<void> {
    this.clear()
    if (this.deps.embedded) return
    await this.deps.sql`select pg_notify(${CHANNEL}, '')`
  }

  private clear(): void {
    this.generation++
    this.cache.clear()
  }
}
