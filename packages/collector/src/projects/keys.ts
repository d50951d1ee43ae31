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
/** Without LISTEN (a transaction-mode pooler, or a lost connection), entries live under the 1 s revocation bound. */
const TTL_POLLING_MS = 900
const MAX_ENTRIES = 10_000
/**
 * A listening instance notifies itself this often and expects the echo on its LISTEN connection:
 * a connection lost without a word (killed backend, a NAT or firewall dropping it, a reconnect
 * refused) would otherwise leave entries cached for the long TTL while revocations go unheard.
 */
const ECHO_INTERVAL_MS = 400
/** No echo for this long: entries older than TTL_POLLING_MS no longer count. */
const ECHO_GRACE_MS = 1_000
/** No echo for this long (while this instance's own notifications do go out): worth a warning. */
const SILENT_WARN_MS = 5_000
const ECHO_PREFIX = 'echo:'

interface Entry {
  key: VerifiedKey
  cachedAt: number
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
 * An entry outlives the 1 s revocation bound only while this instance's LISTEN connection is
 * known to work: it hears its own echo at least every ECHO_GRACE_MS.
 */
export class KeyVerifier {
  private readonly cache = new Map<string, Entry>()
  /** Key id → the rate limit seen by its latest verification (read by the rate limiter right after). */
  private readonly limits = new Map<string, number>()
  /** Bumped by every invalidation: a lookup that started before one must not fill the cache. */
  private generation = 0
  private listener: { unlisten(): Promise<void> } | undefined
  private listening: Promise<void> | undefined
  private stopped = false
  private readonly echoToken = `${ECHO_PREFIX}${randomUUID()}`
  /** When this instance last heard its own echo (0: never). */
  private lastEcho = 0
  private listenedAt = 0
  /** When this instance's latest self-notification was sent (its query done), and whether one is on its way. */
  private lastNotified = 0
  private notifying = false
  /** A warning about unheard echoes was given and no echo came since (one warning per outage). */
  private warnedSilent = false
  private echoTimer: NodeJS.Timeout | undefined

  constructor(private readonly deps: KeyVerifierDeps) {}

  /** How long an entry cached now may be served: long while invalidations are sure to arrive. */
  private ttl(now: number): number {
    if (this.deps.embedded) return TTL_LISTENING_MS // one instance: every invalidation happens in this process
    return now - this.lastEcho < ECHO_GRACE_MS ? TTL_LISTENING_MS : TTL_POLLING_MS
  }

  /**
   * Subscribes to invalidations on real Postgres, lazily on the first key verified: LISTEN holds
   * a connection of its own, which an instance that never sees a key need not spend. Until it is
   * established and echoing (or when it fails, e.g. behind a transaction-mode pooler) entries
   * live < 1 s.
   */
  private listen(): Promise<void> {
    this.listenedAt = Date.now()
    return this.deps.sql
      .listen(
        CHANNEL,
        (payload) => {
          if (payload === this.echoToken) {
            this.lastEcho = Date.now()
            if (this.warnedSilent) {
              this.warnedSilent = false
              this.deps.logger.info('API key invalidations heard again: cached keys live long again')
            }
          } else if (!payload.startsWith(ECHO_PREFIX)) this.clear() // other instances' echoes change nothing
        },
        // (re)connected: notifications may have been missed meanwhile
        () => this.clear(),
      )
      .then(
        (listener) => {
          if (this.stopped) return void listener.unlisten().catch(() => undefined)
          this.listener = listener
          this.echoTimer ??= setInterval(() => this.echo(), ECHO_INTERVAL_MS)
          this.echoTimer.unref()
          this.echo()
        },
        (err: Error) => {
          this.deps.logger.warn({ err: err.message }, 'LISTEN unavailable: API key cache entries live under 1 s')
        },
      )
  }

  /**
   * Notifies this instance's own token. postgres.js sets a lost LISTEN connection up again by
   * itself (and `onlisten` then drops the cache); until the echo returns, entries live < 1 s.
   */
  private echo(): void {
    if (this.stopped) return
    // judged on echoes this instance did send: a pool too busy to send one is no lost connection
    if (!this.warnedSilent && this.lastNotified - Math.max(this.lastEcho, this.listenedAt) >= SILENT_WARN_MS) {
      this.warnedSilent = true
      this.deps.logger.warn(
        { silentForMs: Date.now() - Math.max(this.lastEcho, this.listenedAt) },
        'API key invalidations unheard (LISTEN connection lost, or a pooler that does not pass notifications): cached keys live under 1 s meanwhile',
      )
    }
    if (this.notifying) return
    this.notifying = true
    this.deps.sql`select pg_notify(${CHANNEL}, ${this.echoToken})`.then(
      () => {
        this.notifying = false
        this.lastNotified = Date.now()
      },
      () => {
        this.notifying = false
      },
    )
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.echoTimer) clearInterval(this.echoTimer)
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
    if (hit && now - hit.cachedAt < this.ttl(now)) return this.seen(hit.key)
    const generation = this.generation
    const row = await findActiveKeyByHash(this.deps.sql, hash, DEFAULT_POLICY.rateLimit)
    if (!row) return undefined
    const verified: VerifiedKey = { keyId: row.key_id, projectId: row.project_id, userId: row.user_id, rateLimit: row.rate_limit }
    if (generation === this.generation) {
      if (this.cache.size >= MAX_ENTRIES) this.cache.clear()
      this.cache.set(hash, { key: verified, cachedAt: now })
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
