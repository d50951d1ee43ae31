import { randomUUID } from 'node:crypto'
import { createServer } from 'node:net'
import HyperExpress from 'hyper-express'
import type { Request, Response } from 'hyper-express'
import { toIssues } from '@llmguard/shared'
import { z } from 'zod'
import type { Config } from '../config.js'
import type { Logger } from '../logger.js'
import { ConnectionAbort, parseJson, readBody, refuseUnstorable, requireJsonContentType } from './body.js'
import { AppError } from './errors.js'
import { isReply, type AuthKind, type Principal, type RequestContext, type RouteDef } from './route.js'

export interface AuthRequest {
  headers: Record<string, string>
  ip: string
  params: Record<string, string>
  /** The route's `projectParam`, when it is scoped to a project. */
  projectParam?: string
}

/** What an authenticator establishes: the caller and, when there is one, the project acted on. */
export interface Authenticated {
  principal: Principal
  projectId?: string
}

/** Establishes the caller for a route's auth kind, or throws an AppError (401/403/404). */
export type Authenticate = (kind: AuthKind, req: AuthRequest) => Promise<Principal | Authenticated>

/**
 * Runs after authentication, before the body is read: throws an AppError (429) to refuse the
 * request, or returns headers (e.g. RateLimit-*) to add to the response.
 */
export type RateLimit = (
  principal: Principal,
  route: RouteDef,
) => Record<string, string> | undefined | Promise<Record<string, string> | undefined>

export const anonymousOnly: Authenticate = async (kind) => {
  if (kind === 'none') return { kind: 'anonymous' }
  throw new AppError('UNAUTHORIZED', 'authentication required')
}

export interface HttpServerOptions {
  config: Pick<Config, 'bodyLimitBytes' | 'corsOrigins' | 'trustProxyHops' | 'production' | 'tls'>
  logger: Logger
  authenticate?: Authenticate
}

/** uWS answers 413 by itself above this; our own limit (config.bodyLimitBytes) applies first. */
const TRANSPORT_BODY_LIMIT = 1024 * 1024 * 1024
const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/
const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

export class HttpServer {
  readonly app: HyperExpress.Server
  readonly routes: RouteDef[] = []
  /** Each registered path as a pattern, with the methods it takes: tells a wrong method (405) from an unknown path (404). */
  private readonly paths = new Map<string, { pattern: RegExp; methods: string[] }>()
  private readonly logger: Logger
  private authenticate: Authenticate
  private rateLimit: RateLimit | undefined
  private closing = false
  /** Requests our routes are handling; a graceful close waits for these. */
  private inFlight = 0
  private drained: (() => void) | undefined

  constructor(private readonly options: HttpServerOptions) {
    this.logger = options.logger
    this.authenticate = options.authenticate ?? anonymousOnly
    const tls = options.config.tls
    this.app = new HyperExpress.Server({
      // we install our own signal handling and close idle sockets ourselves (see close())
      auto_close: false,
      max_body_length: TRANSPORT_BODY_LIMIT,
      trust_proxy: false,
      ...(tls ? { cert_file_name: tls.certFile, key_file_name: tls.keyFile } : {}),
    })
    this.app.set_not_found_handler((req, res) => {
      const started = performance.now()
      const requestId = this.requestIdOf(req)
      const origin = req.headers.origin
      this.applyCommonHeaders(res, requestId, origin)
      if (req.method === 'OPTIONS' && origin) return this.preflight(req, res, started, requestId)
      const allow = this.methodsFor(req.path)
      if (allow && req.method === 'OPTIONS') {
        res.header('allow', allow)
        res.status(204).send()
        return this.logRequest('OPTIONS', '(allow)', 204, started, requestId)
      }
      const error = allow
        ? new AppError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${req.path}; it takes ${allow}`, undefined, { allow })
        : new AppError('NOT_FOUND', `no route for ${req.method} ${req.path}`)
      this.sendError(res, error, requestId, false)
      this.logRequest(req.method, '(unmatched)', error.status, started, requestId)
    })
    this.app.set_error_handler((req, res, err) => {
      // Safety net only: route handlers catch their own errors below.
      this.logger.error({ err }, 'unhandled error in request')
      if (!res.completed) this.sendError(res, new AppError('INTERNAL', 'internal error'), this.requestIdOf(req), true)
    })
  }

  setAuthenticator(authenticate: Authenticate): void {
    this.authenticate = authenticate
  }

  setRateLimiter(rateLimit: RateLimit): void {
    this.rateLimit = rateLimit
  }

  register(...routes: RouteDef[]): void {
    for (const route of routes) {
      this.routes.push(route)
      const known = this.paths.get(route.path)
      if (known) known.methods.push(route.method)
      else this.paths.set(route.path, { pattern: pathPattern(route.path), methods: [route.method] })
      const method = route.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete'
      this.app[method](route.path, (req: Request, res: Response) => this.handle(route, req, res))
    }
  }

  /**
   * Listens on host:port, alone: the port is bound exclusively (hyper-express patch), so a second
   * collector on a port in use fails to start instead of sharing its connections.
   */
  async listen(port: number, host: string): Promise<number> {
    try {
      await this.app.listen(port, host)
    } catch {
      // hyper-express rejects with a bare string that cannot tell the two apart
      throw cannotListen(host, port)
    }
    return this.app.port
  }

  /**
   * Stops accepting, lets in-flight requests finish (up to timeoutMs), then drops idle keep-alive
   * sockets. Requests that arrive meanwhile on open connections get a 503 and `Connection: close`.
   * The count is ours: hyper-express's own shutdown() lowers its count for each request it
   * refuses while draining, so a few health checks ended the drain and cut the batches under way.
   */
  async close(timeoutMs: number): Promise<void> {
    if (this.closing) return
    this.closing = true
    this.app.close() // the listen socket only: open connections stay
    let timer: NodeJS.Timeout | undefined
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        this.drained = resolve
        timer = setTimeout(resolve, timeoutMs)
        timer.unref()
      })
    }
    clearTimeout(timer)
    this.drained = undefined
    // what is left: idle keep-alive connections (open until uWS's own idle timeout, ~12 s, otherwise)
    this.app.uws_instance.close()
  }

  private requestIdOf(req: Request): string {
    const given = req.headers['x-request-id']
    return given && REQUEST_ID.test(given) ? given : randomUUID()
  }

  private clientIp(req: Request): string {
    const direct = req.ip
    const hops = this.options.config.trustProxyHops
    if (hops === 0) return direct
    const forwarded = (req.headers['x-forwarded-for'] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
    // Each trusted proxy appends the address it saw; the client is `hops` entries from the end.
    return forwarded[forwarded.length - hops] ?? direct
  }

  private allowedOrigin(origin: string | undefined): string | undefined {
    if (!origin) return undefined
    const allowed = this.options.config.corsOrigins
    if (allowed.includes(origin)) return origin
    if (allowed.includes('*')) return origin
    return undefined
  }

  /** The methods the routes matching `path` take (an `Allow` header's value), or undefined when none does. */
  private methodsFor(path: string): string | undefined {
    const methods = new Set<string>()
    for (const { pattern, methods: m } of this.paths.values()) if (pattern.test(path)) for (const x of m) methods.add(x)
    return methods.size ? [...methods].sort().join(', ') : undefined
  }

  private applyCommonHeaders(res: Response, requestId: string, origin: string | undefined): void {
    res.header('x-request-id', requestId)
    res.header('x-content-type-options', 'nosniff')
    res.header('cache-control', 'no-store')
    if (this.options.config.production) res.header('strict-transport-security', 'max-age=31536000; includeSubDomains')
    const allowed = this.allowedOrigin(origin)
    if (allowed) {
      res.header('access-control-allow-origin', allowed)
      res.header('access-control-allow-credentials', 'true')
      res.header('access-control-expose-headers', 'x-request-id, etag, retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset')
      res.header('vary', 'Origin')
    }
  }

  private preflight(req: Request, res: Response, started: number, requestId: string): void {
    const allowed = this.allowedOrigin(req.headers.origin)
    if (allowed) {
      res.header('access-control-allow-methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS')
      res.header('access-control-allow-headers', 'authorization, content-type, content-encoding, x-api-key, x-request-id, if-none-match')
      res.header('access-control-max-age', '600')
    }
    res.status(204).send()
    this.logRequest('OPTIONS', '(preflight)', 204, started, requestId)
  }

  private async handle(route: RouteDef, req: Request, res: Response): Promise<void> {
    const started = performance.now()
    const requestId = this.requestIdOf(req)
    // uWS frees the request after the first await: read everything needed from it first.
    const ip = this.clientIp(req)
    const headers = req.headers as Record<string, string>
    const rawParams = req.path_parameters
    const rawQuery = req.query_parameters
    this.applyCommonHeaders(res, requestId, headers.origin)
    let bodyPending = METHODS_WITH_BODY.has(route.method) && (headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined)
    if (this.closing) {
      // a request on a connection opened before the close: not started, so safe to retry elsewhere
      this.sendError(res, new AppError('NOT_READY', 'the collector is shutting down: retry'), requestId, true)
      this.logRequest(route.method, route.path, 503, started, requestId)
      return
    }
    this.inFlight++
    let status = 500
    try {
      const params = decodeParams(rawParams)
      const authenticated = await this.authenticate(route.auth, { headers, ip, params, projectParam: route.projectParam })
      const { principal, projectId } = 'principal' in authenticated ? authenticated : { principal: authenticated, projectId: undefined }
      const limitHeaders = await this.rateLimit?.(principal, route)
      for (const [name, value] of Object.entries(limitHeaders ?? {})) res.header(name, value)
      let rawBody: Buffer = Buffer.alloc(0)
      let body: unknown = undefined
      if (METHODS_WITH_BODY.has(route.method)) {
        rawBody = await readBody(req, this.options.config.bodyLimitBytes)
        bodyPending = false
        // webhooks (rawBody) check their senders' signatures instead
        if (!route.rawBody && rawBody.byteLength > 0) requireJsonContentType(headers['content-type'])
        if (!route.rawBody) body = parseJson(rawBody)
        // text PostgreSQL cannot store (a NUL; an unpaired surrogate in jsonb): a 400 here, not a 500 there
        if (!route.rawBody && !route.repairsText) refuseUnstorable(body, 'body')
      }
      refuseUnstorable(rawQuery, 'query')
      const ctx: RequestContext = {
        params: route.params ? parseOr404(route.params, params) : params,
        query: route.query ? parseOr400(route.query, refuseUnknownParams(route.query, { ...rawQuery }), 'query') : {},
        body: route.body ? parseOr400(route.body, body, 'body') : route.rawBody ? body : refuseBody(body),
        rawBody,
        headers,
        principal,
        projectId,
        requestId,
        ip,
        responseHeaders: {},
      }
      const result = await route.handler(ctx)
      if (res.completed) return
      for (const [name, value] of Object.entries(ctx.responseHeaders)) res.header(name, value, true)
      if (isReply(result)) {
        status = result.status
        for (const [name, value] of Object.entries(result.headers ?? {})) res.header(name, value, true)
        res.status(result.status)
        if (result.body === undefined || result.status === 204 || result.status === 304) res.send()
        else this.sendJson(res, result.body)
      } else {
        status = 200
        res.status(200)
        this.sendJson(res, result)
      }
    } catch (err) {
      if (err instanceof ConnectionAbort) {
        status = 413
        res.close()
        return
      }
      const error = err instanceof AppError ? err : new AppError('INTERNAL', 'internal error')
      if (!(err instanceof AppError)) this.logger.error({ err, requestId, route: route.path }, 'request failed')
      status = error.status
      if (!res.completed) this.sendError(res, error, requestId, bodyPending || error.code === 'PAYLOAD_TOO_LARGE')
    } finally {
      this.logRequest(route.method, route.path, status, started, requestId)
      if (--this.inFlight === 0) this.drained?.()
    }
  }

  private sendJson(res: Response, body: unknown): void {
    res.header('content-type', 'application/json; charset=utf-8')
    res.send(JSON.stringify(body))
  }

  private sendError(res: Response, error: AppError, requestId: string, closeConnection: boolean): void {
    const envelope = {
      error: {
        code: error.code,
        message: error.message,
        ...(error.details ? { details: error.details } : {}),
        timestamp: new Date().toISOString(),
        requestId,
      },
    }
    res.status(error.status)
    for (const [name, value] of Object.entries(error.headers ?? {})) res.header(name, value)
    res.header('content-type', 'application/json; charset=utf-8')
    // An unread request body would otherwise be parsed as the next request on this connection.
    if (closeConnection) res.header('connection', 'close')
    res.send(JSON.stringify(envelope), closeConnection)
  }

  private logRequest(method: string, route: string, status: number, started: number, requestId: string): void {
    const ms = Math.round((performance.now() - started) * 100) / 100
    const level = status >= 500 ? 'error' : 'info'
    this.logger[level]({ reqId: requestId, method, route, status, ms }, 'request')
  }
}

/** A hyper-express route path (`/v1/projects/:id`) as a pattern over request paths: a parameter is one segment. */
function pathPattern(path: string): RegExp {
  const source = path
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/')
  return new RegExp(`^${source}$`)
}

/** Path params arrive percent-encoded; one that does not decode names nothing, so it is a 404. */
function decodeParams(raw: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(raw)) {
    try {
      out[key] = decodeURIComponent(value)
    } catch {
      throw new AppError('NOT_FOUND', 'resource not found')
    }
  }
  return out
}

function parseOr404(schema: z.ZodType, value: unknown): unknown {
  const parsed = schema.safeParse(value)
  // a malformed id cannot name an existing resource
  if (!parsed.success) throw new AppError('NOT_FOUND', 'resource not found')
  return parsed.data
}

/**
 * A route that takes no body (rotate, rollback, rca…) accepts none, `{}` or `null`; anything
 * else is refused as unknown fields are, not acted on as if it were not there.
 */
function refuseBody(body: unknown): undefined {
  if (body === undefined || body === null) return undefined
  if (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0) return undefined
  const keys = typeof body === 'object' && !Array.isArray(body) ? Object.keys(body) : []
  const issues = keys.length ? keys.map((k) => ({ path: `body.${k}`, message: 'unknown field: this route takes no body' })) : [{ path: 'body', message: 'this route takes no body' }]
  throw new AppError('VALIDATION_ERROR', `invalid request body: this route takes no body (send none, or {})`, { issues })
}

/** The parameters each query schema takes (null: not an object schema, nothing to check). */
const knownParams = new WeakMap<z.ZodType, ReadonlySet<string> | null>()

/**
 * Refuses query parameters the route does not take, as bodies refuse unknown keys: a mistyped
 * `limt=10` or `modle=gpt-4o` would otherwise be ignored and answer as if it were not there.
 */
function refuseUnknownParams(schema: z.ZodType, query: Record<string, string>): Record<string, string> {
  let known = knownParams.get(schema)
  if (known === undefined) {
    known = schema instanceof z.ZodObject ? new Set(Object.keys(schema.shape)) : null
    knownParams.set(schema, known)
  }
  if (!known) return query
  const unknown = Object.keys(query).filter((k) => !known.has(k))
  if (!unknown.length) return query
  const issues = unknown.map((k) => ({ path: `query.${k}`, message: 'unknown parameter' }))
  throw new AppError('VALIDATION_ERROR', `invalid request query: unknown parameter ${unknown.map((k) => JSON.stringify(k)).join(', ')}; this route takes ${[...known].join(', ')}`, { issues })
}

function parseOr400(schema: z.ZodType, value: unknown, where: 'query' | 'body'): unknown {
  const parsed = schema.safeParse(value)
  if (!parsed.success) {
    const issues = toIssues(parsed.error).map((i) => ({ ...i, path: i.path ? `${where}.${i.path}` : where }))
    throw new AppError('VALIDATION_ERROR', `invalid request ${where}: ${issues[0]?.path}: ${issues[0]?.message}`, { issues })
  }
  return parsed.data
}

const cannotListen = (host: string, port: number, code?: string) =>
  new Error(
    code === 'EACCES'
      ? `cannot listen on ${host}:${port}: permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE; use PORT=3000 behind a proxy)`
      : code === 'EADDRINUSE'
        ? `cannot listen on ${host}:${port}: the port is in use (another collector?) (PORT, HOST)`
        : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN'
          ? `cannot listen on ${host}:${port}: the address is not one of this machine's (HOST)`
          : `cannot listen on ${host}:${port}: the port is in use (another collector?) or the address is not one of this machine's (PORT, HOST)`,
  )

/**
 * Fails as `listen` would if host:port cannot be bound now: checked before the collector opens
 * its database, so a second collector started on a busy port never migrates or touches it.
 * Port 0 is probed too: the port is any free one, but the address may not be this machine's.
 */
export function assertCanListen(port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', (err: NodeJS.ErrnoException) => reject(cannotListen(host, port, err.code)))
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()))
  })
}
