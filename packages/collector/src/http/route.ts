import type { z } from 'zod'

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/**
 * Who may call a route (SPEC "Contract details"):
 * none — public; user — a user's access JWT; apiKey — a project API key;
 * userOrApiKey — the owner's JWT or that project's API key; admin — an admin's JWT.
 */
export type AuthKind = 'none' | 'user' | 'apiKey' | 'userOrApiKey' | 'admin'

/** Who the caller is, as established by the auth guard. */
export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'user'; userId: string; email: string; role: 'user' | 'admin' }
  | { kind: 'apiKey'; keyId: string; projectId: string; userId: string }

export interface RequestContext<P = unknown, Q = unknown, B = unknown> {
  params: P
  query: Q
  body: B
  /** The body bytes as received (after decompression); webhooks verify signatures on these. */
  rawBody: Buffer
  headers: Record<string, string>
  principal: Principal
  /**
   * The project the request acts on, established by the auth guard: the key's project for an
   * API key (always, so `/v1/llm/*` never takes it from the body), or the route's
   * `projectParam` after the ownership check for a user. Undefined otherwise.
   */
  projectId?: string
  requestId: string
  /** The client address (from X-Forwarded-For only when TRUST_PROXY is set). */
  ip: string
  /** Headers to add to the response. */
  responseHeaders: Record<string, string>
}

/** What a handler returns: a plain value is a 200 JSON body; `reply()` sets the status. */
export interface Reply {
  readonly __reply: true
  status: number
  body?: unknown
  headers?: Record<string, string>
}

export const reply = (status: number, body?: unknown, headers?: Record<string, string>): Reply => ({
  __reply: true,
  status,
  body,
  headers,
})

export const isReply = (value: unknown): value is Reply =>
  typeof value === 'object' && value !== null && (value as Reply).__reply === true

type Out<S> = S extends z.ZodType ? z.output<S> : undefined

export interface RouteDef<
  PS extends z.ZodType | undefined = z.ZodType | undefined,
  QS extends z.ZodType | undefined = z.ZodType | undefined,
  BS extends z.ZodType | undefined = z.ZodType | undefined,
> {
  method: HttpMethod
  /** hyper-express pattern, e.g. /v1/projects/:id */
  path: string
  auth: AuthKind
  summary: string
  tags: string[]
  params?: PS
  query?: QS
  body?: BS
  /**
   * The body as the OpenAPI document shows it, where `body` is looser on purpose than what the
   * route takes (the batch validates each record on its own, so one bad record is rejected by
   * index instead of failing the batch): a generator cannot see through that to the fields.
   */
  documentedBody?: z.ZodType
  /** Response schemas by status, for the OpenAPI document; `null` for an empty body. */
  responses: Record<number, z.ZodType | null>
  /**
   * The path param holding the project this route is scoped to (e.g. 'id'). The auth guard
   * then checks it before anything else runs: the owner's JWT, or (userOrApiKey) that
   * project's API key; another user's project → 403, unknown or malformed id → 404.
   */
  projectParam?: string
  /** Keep the body as raw bytes only (webhooks); `body` must then be unset. */
  rawBody?: boolean
  /**
   * The handler makes text PostgreSQL cannot store (a NUL character, an unpaired surrogate)
   * storable itself (ingest: replaced by U+FFFD, so a record is never lost over one). Elsewhere
   * such text is a 400 before the handler runs.
   */
  repairsText?: boolean
  handler: (ctx: RequestContext<Out<PS>, Out<QS>, Out<BS>>) => Promise<unknown> | unknown
}

/** Declares a route with its types inferred from its schemas. */
export function defineRoute<
  PS extends z.ZodType | undefined = undefined,
  QS extends z.ZodType | undefined = undefined,
  BS extends z.ZodType | undefined = undefined,
>(def: RouteDef<PS, QS, BS>): RouteDef {
  return def as unknown as RouteDef
}
