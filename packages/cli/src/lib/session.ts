import { randomUUID } from 'node:crypto'
import { closeSync, linkSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { ApiClient, ApiError, type AuthResult, type RefreshResult, type Tokens } from '@llmguard/shared'
import { readConfig, updateConfig, type CliConfig } from './config.js'
import { CliError } from './errors.js'

const USER_AGENT = 'llmguard-cli'
/** Refresh this long before the access token runs out, so a request never races the expiry. */
const EXPIRY_MARGIN_MS = 30_000
const SESSION_ENDED = new Set(['UNAUTHORIZED', 'TOKEN_REUSED', 'TOKEN_EXPIRED', 'INVALID_CREDENTIALS'])
/** Answers to an access token that a refresh may cure: it ran out, or the collector no longer takes it. */
const REFRESHABLE = new Set(['TOKEN_EXPIRED', 'UNAUTHORIZED'])
/** A refresh lock older than this was left by a process that died (a refresh takes ≤ 15 s). */
const LOCK_STALE_MS = 20_000
/** How long a process waits for another's refresh before giving up. */
const LOCK_WAIT_MS = 25_000

export const loginAgain = (why: string) =>
  new CliError('SESSION_EXPIRED', `${why}: log in again with \`llmguard login\``, 1)

/** Saves a login's tokens; rotation means the new refresh token must always replace the old one. */
export function tokensToConfig(tokens: Tokens, now = Date.now()): Partial<CliConfig> {
  return {
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    accessTokenExpiresAt: now + tokens.expiresIn * 1000,
  }
}

/**
 * The signed-in user's client: the shared ApiClient with the access token from the config,
 * refreshed before it expires (and once more when the collector says TOKEN_EXPIRED).
 */
export class Session {
  readonly api: ApiClient
  private refreshing: Promise<void> | undefined

  constructor(
    readonly collector: string,
    private readonly configFile: string,
    options: { timeoutMs?: number } = {},
  ) {
    this.api = new ApiClient({ baseUrl: collector, userAgent: USER_AGENT, timeoutMs: options.timeoutMs ?? 15_000 })
  }

  get config(): CliConfig {
    return readConfig(this.configFile)
  }

  /**
   * An authenticated request; refreshes the access token once when needed: when it is about to
   * run out, or when the collector answers TOKEN_EXPIRED or UNAUTHORIZED (a logged-out session,
   * or a collector whose secrets changed). A refresh that fails asks to log in again.
   */
  async request<T>(method: string, path: string, opts: { query?: Record<string, string | number | boolean | undefined>; body?: unknown } = {}): Promise<T> {
    const token = await this.accessToken()
    try {
      return (await this.api.send<T>(method, path, { ...opts, token })).data
    } catch (err) {
      if (!(err instanceof ApiError) || !REFRESHABLE.has(err.code)) throw err
      await this.refresh(token)
      return (await this.api.send<T>(method, path, { ...opts, token: await this.accessToken() })).data
    }
  }

  get<T>(path: string, query?: Record<string, string | number | boolean | undefined>) {
    return this.request<T>('GET', path, { query })
  }
  post<T>(path: string, body?: unknown) {
    return this.request<T>('POST', path, { body })
  }
  patch<T>(path: string, body?: unknown) {
    return this.request<T>('PATCH', path, { body })
  }
  delete<T>(path: string) {
    return this.request<T>('DELETE', path)
  }

  /** The session's access token, refreshed first when it is about to expire. */
  currentAccessToken(): Promise<string> {
    return this.accessToken()
  }

  /** Fails with NOT_LOGGED_IN unless there is a session for this collector (no request made). */
  requireLogin(): void {
    const c = this.config
    if (!c.accessToken || !c.refreshToken) {
      throw new CliError('NOT_LOGGED_IN', 'not logged in: run `llmguard login` (or `llmguard init` to set up from scratch)')
    }
    if (c.collector && sameCollector(c.collector, this.collector) === false) {
      throw new CliError('NOT_LOGGED_IN', `logged in to ${c.collector}, not ${this.collector}: run \`llmguard login --collector ${this.collector}\``)
    }
  }

  private async accessToken(): Promise<string> {
    this.requireLogin()
    const c = this.config
    if (!fresh(c)) {
      await this.refresh(c.accessToken)
      return this.config.accessToken!
    }
    return c.accessToken!
  }

  /**
   * Replaces the access token `stale` (the one that ran out or was refused). One refresh at a
   * time, across processes too: a second refresh would present an already-rotated refresh token,
   * which the collector takes for theft (TOKEN_REUSED) and ends the session everywhere. So a
   * refresh holds a lock file beside the config, and a process that waited for one uses the
   * tokens it stored.
   */
  refresh(stale?: string): Promise<void> {
    this.refreshing ??= withRefreshLock(this.configFile, () => this.doRefresh(stale)).finally(() => {
      this.refreshing = undefined
    })
    return this.refreshing
  }

  private async doRefresh(stale: string | undefined): Promise<void> {
    const c = this.config
    // refreshed by another process while this one waited for the lock
    if (c.accessToken && c.accessToken !== stale && fresh(c)) return
    const refreshToken = c.refreshToken
    if (!refreshToken) throw loginAgain('not logged in')
    let result: RefreshResult
    try {
      result = await this.api.post<RefreshResult>('/v1/auth/refresh', { refreshToken })
    } catch (err) {
      if (err instanceof ApiError && SESSION_ENDED.has(err.code)) {
        updateConfig(({ accessToken: _a, refreshToken: _r, accessTokenExpiresAt: _e, ...rest }) => rest, this.configFile)
        throw loginAgain(`your session has ended (${err.message})`)
      }
      throw err
    }
    updateConfig((cfg) => ({ ...cfg, ...tokensToConfig(result.tokens) }), this.configFile)
  }

  /** Logs in or registers and stores the session. */
  async authenticate(mode: 'login' | 'register', email: string, password: string): Promise<AuthResult> {
    const result = await this.api.post<AuthResult>(`/v1/auth/${mode}`, { email, password })
    updateConfig(
      (c) => ({
        ...c,
        ...tokensToConfig(result.tokens),
        collector: this.collector,
        email: result.user.email,
        userId: result.user.id,
        // a project of the previous account would answer 403
        projectId: c.userId === result.user.id ? c.projectId : undefined,
      }),
      this.configFile,
    )
    return result
  }

  close(): Promise<void> {
    return this.api.close()
  }
}

function sameCollector(a: string, b: string): boolean {
  return a.replace(/\/+$/, '') === b.replace(/\/+$/, '')
}

/** Whether the config's access token has more than EXPIRY_MARGIN_MS to live. */
function fresh(c: CliConfig): boolean {
  return (c.accessTokenExpiresAt ?? 0) - EXPIRY_MARGIN_MS > Date.now()
}

/**
 * Runs `fn` holding `<config>.refresh-lock`, created exclusively and holding its owner (host,
 * pid and a nonce). A config on a disk several hosts or containers share is why the host is in
 * it: another host's pid says nothing here, so its lock is only ever waited out by age.
 */
async function withRefreshLock<T>(configFile: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${configFile}.refresh-lock`
  const mine = JSON.stringify({ host: hostname(), pid: process.pid, nonce: randomUUID() })
  const giveUpAt = Date.now() + LOCK_WAIT_MS
  while (!createLock(lock, mine)) {
    const held = readLock(lock)
    if (held !== undefined && abandoned(lock, held)) {
      takeOver(lock, held)
      continue
    }
    if (Date.now() > giveUpAt) {
      throw new CliError('SESSION_BUSY', `another llmguard process has been refreshing the session for ${LOCK_WAIT_MS / 1000} s (${lock}): try again, or delete that file if no llmguard is running`, 1)
    }
    await sleep(50)
  }
  try {
    return await fn()
  } finally {
    // only our own: a lock taken over while this process was stopped (Ctrl-Z) is another's now
    if (readLock(lock) === mine) rmSync(lock, { force: true })
  }
}

function createLock(lock: string, content: string): boolean {
  let fd: number
  try {
    fd = openSync(lock, 'wx', 0o600)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return false
    // Windows: a lock file whose deletion is pending cannot be created again until it is gone
    if (process.platform === 'win32' && (code === 'EPERM' || code === 'EACCES')) return false
    throw err
  }
  try {
    writeSync(fd, content)
  } finally {
    closeSync(fd)
  }
  return true
}

function readLock(lock: string): string | undefined {
  try {
    return readFileSync(lock, 'utf8')
  } catch {
    return undefined
  }
}

/**
 * A lock older than any refresh, or whose owner on this host is gone. Text that is no owner (a
 * lock being written) is only waited out by age.
 */
function abandoned(lock: string, held: string): boolean {
  try {
    if (Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS) return true
  } catch {
    return false // released meanwhile: the next try takes it
  }
  let owner: { host?: unknown; pid?: unknown }
  try {
    owner = JSON.parse(held) as typeof owner
  } catch {
    return false
  }
  if (owner.host !== hostname() || typeof owner.pid !== 'number' || owner.pid === process.pid) return false
  try {
    process.kill(owner.pid, 0)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

/**
 * Moves an abandoned lock aside and removes it. Another waiter may have taken it over first and
 * made its own lock, which the move then took: that one is put back (a link, which fails if a
 * newer lock exists meanwhile).
 */
function takeOver(lock: string, held: string): void {
  const aside = `${lock}.${randomUUID()}`
  try {
    renameSync(lock, aside)
  } catch {
    return // gone meanwhile: the next try creates it
  }
  if (readLock(aside) !== held) {
    try {
      linkSync(aside, lock)
    } catch {
      // a newer lock is in place already
    }
  }
  rmSync(aside, { force: true })
}
