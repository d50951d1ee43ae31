import { ApiClient, ApiError, authResultSchema, notACollector, refreshResultSchema, type AuthResult, type RefreshResult, type Tokens } from '@llmguard/shared'
import { readConfig, updateConfig, type CliConfig } from './config.js'
import { CliError } from './errors.js'
import { withFileLock } from './lock.js'

const USER_AGENT = 'llmguard-cli'
/** Refresh this long before the access token runs out, so a request never races the expiry. */
const EXPIRY_MARGIN_MS = 30_000
const SESSION_ENDED = new Set(['UNAUTHORIZED', 'TOKEN_REUSED', 'TOKEN_EXPIRED', 'INVALID_CREDENTIALS'])
/** Answers to an access token that a refresh may cure: it ran out, or the collector no longer takes it. */
const REFRESHABLE = new Set(['TOKEN_EXPIRED', 'UNAUTHORIZED'])
/**
 * The refresh lock beside the config: one older than 20 s was left by a process that died (a
 * refresh takes ≤ 15 s); a process waits 25 s for another's refresh before giving up.
 */
const REFRESH_LOCK = {
  staleMs: 20_000,
  waitMs: 25_000,
  busy: () => new CliError('SESSION_BUSY', 'another llmguard process has been refreshing the session for 25 s: try again (or delete config.json.refresh-lock beside the config if no llmguard is running)', 1),
}

/** A zod schema, as far as checking an answer needs one (the CLI does not depend on zod itself). */
export interface Shape {
  safeParse(data: unknown): { success: true } | { success: false; error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] } }
}

/**
 * `data` if it has the collector's shape for this answer, else NOT_A_COLLECTOR: a server that
 * answers 200 with something else would otherwise surface as `undefined` or a crash further on.
 * The data is returned as it came (fields a newer collector adds are kept for --json).
 */
export function expectShape<T>(collector: string, schema: Shape, data: unknown): T {
  const checked = schema.safeParse(data)
  if (checked.success) return data as T
  const issue = checked.error.issues[0]
  throw notACollector(collector, 200, issue ? `${issue.path.map(String).join('.') || 'body'}: ${issue.message}` : undefined)
}

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
  async request<T>(method: string, path: string, opts: { query?: Record<string, string | number | boolean | undefined>; body?: unknown; shape?: Shape } = {}): Promise<T> {
    const { shape, ...rest } = opts
    const token = await this.accessToken()
    let data: T
    try {
      data = (await this.api.send<T>(method, path, { ...rest, token })).data
    } catch (err) {
      if (!(err instanceof ApiError) || !REFRESHABLE.has(err.code)) throw err
      await this.refresh(token)
      data = (await this.api.send<T>(method, path, { ...rest, token: await this.accessToken() })).data
    }
    if (shape) return expectShape<T>(this.collector, shape, data)
    // every answer with a body is a JSON object or array: a bare string or number is another server's
    if (data !== undefined && (data === null || typeof data !== 'object')) throw notACollector(this.collector, 200)
    return data
  }

  /** A GET; with `shape`, an answer not of that shape is NOT_A_COLLECTOR. */
  get<T>(path: string, query?: Record<string, string | number | boolean | undefined>, shape?: Shape) {
    return this.request<T>('GET', path, { query, shape })
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
    this.refreshing ??= withFileLock(`${this.configFile}.refresh-lock`, REFRESH_LOCK, () => this.doRefresh(stale)).finally(() => {
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
      result = expectShape<RefreshResult>(this.collector, refreshResultSchema, await this.api.post('/v1/auth/refresh', { refreshToken }))
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
    const result = expectShape<AuthResult>(this.collector, authResultSchema, await this.api.post(`/v1/auth/${mode}`, { email, password }))
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
