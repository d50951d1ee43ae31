import { createHash } from 'node:crypto'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { CallContext } from './wrap/openai.js'

export interface LLMGuardOptions {
  /** Project API key (`lg_…`). Env `LLMGUARD_API_KEY`. Without one nothing is shipped (records wait in the outbox). */
  apiKey?: string
  /** Collector URL. Env `LLMGUARD_ENDPOINT`; default http://localhost:3000. */
  endpoint?: string
  /**
   * Outbox file. Env `LLMGUARD_OUTBOX`. Default: one file per endpoint and key under
   * `~/.llmguard/` (records carry no project: the key that ships them decides it, so two apps
   * with different keys must not share a file). `':memory:'` keeps records in this process only.
   */
  outbox?: string
  /**
   * 'buffered' (default): records reach the outbox within `writeDelayMs` (≤ 100 ms).
   * 'immediate': written before the wrapped call returns to the caller. Env `LLMGUARD_DURABILITY`.
   */
  durability?: 'buffered' | 'immediate'
  /** Flush at the end of each call (for functions that freeze between invocations). Env `LLMGUARD_SERVERLESS`. */
  serverless?: boolean
  /** Outbox cap; past it the oldest records are dropped and counted. Env `LLMGUARD_OUTBOX_MAX_RECORDS`; default 100,000. */
  maxOutboxRecords?: number
  /** Fetch and apply the project's policy. Env `LLMGUARD_POLICY` (`off` disables); default on. */
  policy?: boolean
  /** Env `LLMGUARD_POLICY_REFRESH_MS`; default 30 s. */
  policyRefreshMs?: number
  /** Turns the whole SDK into a pass-through. Env `LLMGUARD_DISABLED`. */
  disabled?: boolean
  /** Defaults for every call's user and metadata. */
  userId?: string
  metadata?: Record<string, unknown>
  /** Scores a prompt 0–100 for `blockOnRisk`; defaults to the shared scorer. */
  riskScorer?: (prompt: string, model: string) => number
  /** Where LLMGuard's own warnings go; default console.warn. */
  logger?: { warn(message: string): void }
  /** Collector request timeout; default 15 s. */
  requestTimeoutMs?: number
  /**
   * Tuning: the durability window (default 50 ms), batching delay (1 s: each POST costs the
   * process about a millisecond of CPU whatever its size, so fewer, fuller batches), outbox
   * poll (5 s).
   */
  writeDelayMs?: number
  shipDelayMs?: number
  pollMs?: number
  /** Serverless flush bound; default 2 s. */
  serverlessFlushTimeoutMs?: number
  /** Environment to read instead of process.env (tests). */
  env?: Record<string, string | undefined>
}

export interface ResolvedOptions {
  apiKey: string | undefined
  endpoint: string
  outbox: string
  durability: 'buffered' | 'immediate'
  serverless: boolean
  maxOutboxRecords: number
  policy: boolean
  policyRefreshMs: number
  disabled: boolean
  defaults: CallContext | undefined
  riskScorer: ((prompt: string, model: string) => number) | undefined
  warn: (message: string) => void
  requestTimeoutMs: number
  writeDelayMs: number
  shipDelayMs: number
  pollMs: number
  serverlessFlushTimeoutMs: number
}

const bool = (v: string | undefined): boolean | undefined => {
  if (v === undefined || v === '') return undefined
  return !['0', 'false', 'off', 'no'].includes(v.trim().toLowerCase())
}
const int = (v: string | undefined): number | undefined => {
  if (v === undefined || v === '') return undefined
  const n = Number(v)
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : undefined
}

/** The longest delay a Node timer takes: past it, setTimeout and setInterval fire after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * A duration option within what a timer can take: not a number → the default; a huge value (a
 * month, meant as "hardly ever") is the longest timer instead of a timer firing every ms.
 */
const ms = (v: number | undefined, fallback: number, min = 0): number =>
  typeof v === 'number' && !Number.isNaN(v) ? Math.min(Math.max(Math.floor(v), min), MAX_TIMER_MS) : fallback

/** Arguments, then LLMGUARD_* variables, then defaults. Pure apart from reading the home dir. */
export function resolveOptions(o: LLMGuardOptions = {}): ResolvedOptions {
  const env = o.env ?? process.env
  const apiKey = o.apiKey ?? (env.LLMGUARD_API_KEY || undefined)
  // from plain JavaScript (or a config file) anything may arrive: null counts as not given, any
  // other non-string becomes text the endpoint check then refuses with its warning, never a throw
  const given = o.endpoint === undefined || o.endpoint === null ? undefined : String(o.endpoint)
  const endpoint = (given ?? (env.LLMGUARD_ENDPOINT || 'http://localhost:3000')).replace(/\/+$/, '')
  const durabilityEnv = env.LLMGUARD_DURABILITY === 'immediate' ? 'immediate' : env.LLMGUARD_DURABILITY === 'buffered' ? 'buffered' : undefined
  const defaults: CallContext | undefined = o.userId || o.metadata ? { userId: o.userId, metadata: o.metadata } : undefined
  return {
    apiKey,
    endpoint,
    outbox: o.outbox ?? (env.LLMGUARD_OUTBOX || defaultOutboxPath(endpoint, apiKey)),
    durability: o.durability ?? durabilityEnv ?? 'buffered',
    serverless: o.serverless ?? bool(env.LLMGUARD_SERVERLESS) ?? false,
    maxOutboxRecords: o.maxOutboxRecords ?? int(env.LLMGUARD_OUTBOX_MAX_RECORDS) ?? 100_000,
    policy: o.policy ?? bool(env.LLMGUARD_POLICY) ?? true,
    // at least a second: a refresh is a request to the collector
    policyRefreshMs: ms(o.policyRefreshMs ?? int(env.LLMGUARD_POLICY_REFRESH_MS), 30_000, 1_000),
    disabled: o.disabled ?? bool(env.LLMGUARD_DISABLED) ?? false,
    defaults,
    riskScorer: o.riskScorer,
    warn: o.logger ? (m) => o.logger!.warn(m) : (m) => console.warn(`[llmguard] ${m}`),
    // at least 1 ms: 0 would turn undici's timeouts off
    requestTimeoutMs: ms(o.requestTimeoutMs, 15_000, 1),
    writeDelayMs: ms(o.writeDelayMs, 50),
    shipDelayMs: ms(o.shipDelayMs, 1_000),
    pollMs: ms(o.pollMs, 5_000),
    serverlessFlushTimeoutMs: ms(o.serverlessFlushTimeoutMs, 2_000),
  }
}

/** A short tag of the endpoint and API key: names the default outbox file and the saved policy's row. */
export function keyTag(endpoint: string, apiKey: string | undefined): string {
  return createHash('sha256').update(`${endpoint}\n${apiKey ?? ''}`).digest('hex').slice(0, 16)
}

export function defaultOutboxPath(endpoint: string, apiKey: string | undefined): string {
  return join(homedir(), '.llmguard', `outbox-${keyTag(endpoint, apiKey)}.sqlite`)
}
