import { ApiClient, ApiError, type AuthResult, type RefreshResult, type Tokens } from '@llmguard/shared'
import { readConfig, updateConfig, type CliConfig } from './config.js'
import { CliError } from './errors.js'

const USER_AGENT = 'llmguard-cli'
/** Refresh this long before the access token runs out, so a request never races the expiry. */
const EXPIRY_MARGIN_MS = 30_000
const SESSION_ENDED = new Set(['UNAUTHORIZED', 'TOKEN_REUSED', 'TOKEN_EXPIRED', 'INVALID_CREDENTIALS'])

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

  /** An authenticated request; refreshes the access token once when needed. */
  async request<T>(method: string, path: string, opts: { query?: Record<string, string | number | boolean | undefined>; body?: unknown } = {}): Promise<T> {
    const token = await this.accessToken()
    try {
      return (await this.api.send<T>(method, path, { ...opts, token })).data
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== 'TOKEN_EXPIRED') throw err
      await this.refresh()
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
    if ((c.accessTokenExpiresAt ?? 0) - EXPIRY_MARGIN_MS <= Date.now()) {
      await this.refresh()
      return this.config.accessToken!
    }
    return c.accessToken!
  }

  /** One refresh at a time: a second one would present an already-rotated token (TOKEN_REUSED). */
  refresh(): Promise<void> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = undefined
    })
    return this.refreshing
  }

  private async doRefresh(): Promise<void> {
    const refreshToken = this.config.refreshToken
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
    updateConfig((c) => ({ ...c, ...tokensToConfig(result.tokens) }), this.configFile)
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
