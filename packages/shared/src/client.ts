import type { Dispatcher } from 'undici'
import { createAgent, undiciSend, type UndiciReply } from './undici.js'
import { errorEnvelopeSchema } from './errors.js'

/** An error answered by the collector (its envelope), or `UNREACHABLE` when no answer came. */
export class ApiError extends Error {
  override readonly name = 'ApiError'
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly details?: Record<string, unknown>,
    readonly requestId?: string,
  ) {
    super(message)
  }
}

export interface ApiClientOptions {
  /** Collector base URL, e.g. http://localhost:3000 */
  baseUrl: string
  /** A user's access JWT or a project API key (`lg_…`); both travel as a Bearer token. */
  token?: string | (() => string | undefined)
  /** Per-request timeout; the collector is local or near, so keep it short. */
  timeoutMs?: number
  dispatcher?: Dispatcher
  userAgent?: string
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined | null>
  body?: unknown
  headers?: Record<string, string>
  /** Override the client's token for this request (e.g. an API key). */
  token?: string
}

export interface ApiResponse<T> {
  status: number
  headers: Record<string, string | string[] | undefined>
  data: T
}

/**
 * A 2xx answer that is not what the collector sends (not JSON, or JSON of another shape): the
 * URL most likely points at another server. Users of a response's shape check it and throw this.
 */
export const notACollector = (baseUrl: string, status: number, detail?: string) =>
  new ApiError('NOT_A_COLLECTOR', `${baseUrl} answered without an LLMGuard body${detail ? ` (${detail})` : ''}: is it the collector's URL?`, status)

/** The largest answer read (a page of logs with long prompts stays far below it). */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024

/**
 * A small typed HTTP client for the collector's REST API, shared by the CLI and the tests.
 * Errors come back as `ApiError` with the envelope's stable code.
 */
export class ApiClient {
  readonly baseUrl: string
  private readonly dispatcher: Dispatcher
  private readonly ownsDispatcher: boolean

  constructor(private readonly options: ApiClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.ownsDispatcher = !options.dispatcher
    this.dispatcher = options.dispatcher ?? createAgent({ keepAliveTimeout: 4_000 })
  }

  async send<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
    const url = new URL(this.baseUrl + path)
    for (const [key, value] of Object.entries(opts.query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(key, String(value))
    }
    const token = opts.token ?? (typeof this.options.token === 'function' ? this.options.token() : this.options.token)
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': this.options.userAgent ?? 'llmguard-client',
      ...opts.headers,
    }
    if (token) headers.authorization = `Bearer ${token}`
    let body: string | undefined
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body)
      headers['content-type'] = 'application/json'
    }
    const timeout = this.options.timeoutMs ?? 30_000
    let res: UndiciReply
    try {
      res = await undiciSend(this.dispatcher, url, { method: method as Dispatcher.HttpMethod, headers, body, timeoutMs: timeout, maxResponseBytes: MAX_RESPONSE_BYTES })
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err)
      throw new ApiError('UNREACHABLE', `collector at ${this.baseUrl} is unreachable: ${reason}`, 0)
    }
    const text = res.text
    let data: unknown = undefined
    if (text.length > 0) {
      try {
        data = JSON.parse(text)
      } catch {
        // every collector answer is JSON: a 2xx page of HTML is another server on that port
        if (res.statusCode < 400) throw notACollector(this.baseUrl, res.statusCode)
        data = text
      }
    }
    if (res.statusCode >= 400) {
      const envelope = errorEnvelopeSchema.safeParse(data)
      if (envelope.success) {
        const e = envelope.data.error
        throw new ApiError(e.code, e.message, res.statusCode, e.details, e.requestId)
      }
      // no envelope: most likely not a collector at all (a proxy's error page, another service)
      // the body kept for who knows its shape (a 503 from /readyz carries the readiness, no envelope)
      const details = data !== null && typeof data === 'object' ? { body: data as unknown } : undefined
      throw new ApiError('HTTP_ERROR', `${this.baseUrl} answered ${res.statusCode} without an LLMGuard error body: is it the collector's URL?`, res.statusCode, details)
    }
    return { status: res.statusCode, headers: res.headers, data: data as T }
  }

  async get<T = unknown>(path: string, opts?: RequestOptions): Promise<T> {
    return (await this.send<T>('GET', path, opts)).data
  }
  async post<T = unknown>(path: string, body?: unknown, opts?: RequestOptions): Promise<T> {
    return (await this.send<T>('POST', path, { ...opts, body })).data
  }
  async patch<T = unknown>(path: string, body?: unknown, opts?: RequestOptions): Promise<T> {
    return (await this.send<T>('PATCH', path, { ...opts, body })).data
  }
  async put<T = unknown>(path: string, body?: unknown, opts?: RequestOptions): Promise<T> {
    return (await this.send<T>('PUT', path, { ...opts, body })).data
  }
  async delete<T = unknown>(path: string, opts?: RequestOptions): Promise<T> {
    return (await this.send<T>('DELETE', path, opts)).data
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close()
  }
}
