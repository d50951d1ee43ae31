import {
  authResultSchema,
  loginBodySchema,
  REFRESH_COOKIE,
  REFRESH_TOKEN_TTL_SECONDS,
  refreshBodySchema,
  refreshResultSchema,
  registerBodySchema,
  userSchema,
  type Tokens,
} from '@llmguard/shared'
import { AppError } from '../http/errors.js'
import { defineRoute, reply, type RequestContext, type RouteDef } from '../http/route.js'
import { userIdOf } from './guard.js'
import type { AuthService } from './service.js'

export interface AuthRoutesDeps {
  auth: AuthService
  /** Origins allowed to use the refresh cookie (CORS_ORIGINS). */
  corsOrigins: string[]
}

const COOKIE_ATTRIBUTES = 'Path=/v1/auth; HttpOnly; Secure; SameSite=Strict'
const setCookie = (token: string) => `${REFRESH_COOKIE}=${token}; ${COOKIE_ATTRIBUTES}; Max-Age=${REFRESH_TOKEN_TTL_SECONDS}`
const clearCookie = () => `${REFRESH_COOKIE}=; ${COOKIE_ATTRIBUTES}; Max-Age=0`

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || undefined
  }
  return undefined
}

/** Cookie mode answers without the refresh token in the body: it travels only in the cookie. */
function withoutRefresh(tokens: Tokens): Tokens {
  const { refreshToken: _cookieOnly, ...rest } = tokens
  return rest
}

export function authRoutes({ auth, corsOrigins }: AuthRoutesDeps): RouteDef[] {
  /**
   * The refresh token of a refresh or logout: the body's, else the cookie's. A cookie is sent by
   * the browser whoever asks, so it is honoured only from an origin in CORS_ORIGINS (a listed
   * origin, not "*").
   */
  function presentedToken(ctx: RequestContext<unknown, unknown, { refreshToken?: string }>): { token: string; cookie: boolean } {
    if (ctx.body.refreshToken) return { token: ctx.body.refreshToken, cookie: false }
    const token = cookieValue(ctx.headers.cookie, REFRESH_COOKIE)
    if (!token) {
      throw new AppError('VALIDATION_ERROR', 'invalid request body: body.refreshToken: required', {
        issues: [{ path: 'body.refreshToken', message: 'required (or the refresh cookie of cookie mode)' }],
      })
    }
    const origin = ctx.headers.origin
    if (!origin || !corsOrigins.includes(origin)) {
      throw new AppError('FORBIDDEN', 'the refresh cookie is accepted only from an origin listed in CORS_ORIGINS')
    }
    return { token, cookie: true }
  }

  return [
    defineRoute({
      method: 'POST',
      path: '/v1/auth/register',
      auth: 'none',
      summary: 'Create an account (the first one of an install is admin); 403 SIGNUP_CLOSED when ALLOW_SIGNUP=false; 429 past SIGNUP_LIMIT tries per address',
      tags: ['auth'],
      body: registerBodySchema,
      responses: { 201: authResultSchema },
      handler: async ({ body, ip }) => {
        const result = await auth.register({ ...body, ip })
        if (!body.useCookies) return reply(201, result)
        return reply(201, { user: result.user, tokens: withoutRefresh(result.tokens) }, { 'set-cookie': setCookie(result.tokens.refreshToken!) })
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/auth/login',
      auth: 'none',
      summary: 'Sign in with email and password; attempts are limited per email and per client address',
      tags: ['auth'],
      body: loginBodySchema,
      responses: { 200: authResultSchema },
      handler: async ({ body, ip }) => {
        const result = await auth.login({ email: body.email, password: body.password, ip })
        if (!body.useCookies) return result
        return reply(200, { user: result.user, tokens: withoutRefresh(result.tokens) }, { 'set-cookie': setCookie(result.tokens.refreshToken!) })
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/auth/refresh',
      auth: 'none',
      summary: 'Exchange a refresh token for a new pair (rotation; a reused token → 401 TOKEN_REUSED and its family revoked)',
      tags: ['auth'],
      body: refreshBodySchema,
      responses: { 200: refreshResultSchema },
      handler: async (ctx) => {
        const { token, cookie } = presentedToken(ctx)
        const tokens = await auth.refresh(token)
        if (!cookie) return { tokens }
        return reply(200, { tokens: withoutRefresh(tokens) }, { 'set-cookie': setCookie(tokens.refreshToken) })
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/auth/logout',
      auth: 'none',
      summary: 'Revoke the session of a refresh token',
      tags: ['auth'],
      body: refreshBodySchema,
      responses: { 204: null },
      handler: async (ctx) => {
        const { token, cookie } = presentedToken(ctx)
        await auth.logout(token)
        return reply(204, undefined, cookie ? { 'set-cookie': clearCookie() } : undefined)
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/auth/me',
      auth: 'user',
      summary: 'The signed-in user',
      tags: ['auth'],
      responses: { 200: userSchema },
      handler: ({ principal }) => auth.me(userIdOf(principal)),
    }),
  ]
}
