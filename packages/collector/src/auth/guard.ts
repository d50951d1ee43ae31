import { isApiKey } from '@llmguard/shared'
import { AppError } from '../http/errors.js'
import type { AuthKind, Principal, RequestContext } from '../http/route.js'
import type { Authenticate, Authenticated, AuthRequest } from '../http/server.js'
import type { KeyVerifier } from '../projects/keys.js'
import type { TokenSigner } from './tokens.js'

export interface GuardDeps {
  signer: TokenSigner
  keys: KeyVerifier
  /** Ownership (projects service): throws 404 for an unknown or malformed id, 403 for another's. */
  assertAccess(principal: Principal, projectId: string): Promise<void>
  /**
   * The token's user as the database has it now: the current role (admin routes check it, not
   * the token's claim) and whether the session the token was issued in has ended (logout, token
   * theft); undefined when the user no longer exists.
   */
  holder(userId: string, sessionId: string | undefined): Promise<{ role: 'user' | 'admin'; sessionEnded: boolean } | undefined>
}

const USER_KINDS = new Set<AuthKind>(['user', 'admin', 'userOrApiKey'])
const KEY_KINDS = new Set<AuthKind>(['apiKey', 'userOrApiKey'])

/** The credential of a request: `Authorization: Bearer …` (JWT or lg_ key) or `X-API-Key: lg_…`. */
function credentialOf(headers: Record<string, string>): { type: 'jwt' | 'key'; value: string } | undefined {
  const authorization = headers.authorization
  if (authorization) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
    if (!match) throw new AppError('UNAUTHORIZED', 'Authorization must be "Bearer <token>"')
    const token = match[1]!
    return { type: isApiKey(token) ? 'key' : 'jwt', value: token }
  }
  const apiKey = headers['x-api-key']
  if (apiKey) return { type: 'key', value: apiKey.trim() }
  return undefined
}

/**
 * The auth guard of SPEC "Contract details": no auth, a user's JWT, a project API key, either
 * (for project routes that an SDK may read), or an admin's JWT. For a route scoped to a project
 * (`projectParam`), ownership is checked here, before validation and the handler run.
 */
export function createAuthenticator(deps: GuardDeps): Authenticate {
  return async (kind: AuthKind, req: AuthRequest): Promise<Principal | Authenticated> => {
    if (kind === 'none') return { kind: 'anonymous' }
    const credential = credentialOf(req.headers)
    if (!credential) throw new AppError('UNAUTHORIZED', 'authentication required')
    let principal: Principal
    let projectId: string | undefined
    if (credential.type === 'key') {
      if (!KEY_KINDS.has(kind)) throw new AppError('UNAUTHORIZED', 'this route needs a user access token, not an API key')
      const key = await deps.keys.verify(credential.value)
      if (!key) throw new AppError('INVALID_API_KEY', 'invalid or revoked API key')
      principal = { kind: 'apiKey', keyId: key.keyId, projectId: key.projectId, userId: key.userId }
      // a key acts on its own project only: the project never comes from the request
      projectId = key.projectId
    } else {
      if (!USER_KINDS.has(kind)) throw new AppError('UNAUTHORIZED', 'this route needs a project API key')
      const claims = await deps.signer.verifyAccess(credential.value)
      // stateless until now: a logged-out session's tokens, or a deleted user's, would have
      // worked on for 15 minutes (the latter into a foreign-key violation, a 500)
      const holder = await deps.holder(claims.userId, claims.sessionId)
      if (!holder) throw new AppError('UNAUTHORIZED', 'the account this token was issued to no longer exists: the token is no longer valid')
      if (claims.sessionId && holder.sessionEnded) {
        throw new AppError('UNAUTHORIZED', 'this session has ended (logged out, or revoked after a reused refresh token): log in again')
      }
      principal = { kind: 'user', userId: claims.userId, email: claims.email, role: claims.role }
      if (kind === 'admin') {
        if (holder.role !== 'admin') throw new AppError('FORBIDDEN', 'administrators only')
        principal.role = holder.role
      }
    }
    if (req.projectParam) {
      const requested = req.params[req.projectParam] ?? ''
      await deps.assertAccess(principal, requested)
      projectId = requested
    }
    return { principal, projectId }
  }
}

/** The signed-in user's id (routes with auth 'user' or 'admin' always have one). */
export function userIdOf(principal: Principal): string {
  if (principal.kind === 'user' || principal.kind === 'apiKey') return principal.userId
  throw new AppError('UNAUTHORIZED', 'authentication required')
}

/** The project a request acts on, as the guard established it (see RequestContext.projectId). */
export function projectIdOf(ctx: Pick<RequestContext, 'projectId'>): string {
  if (!ctx.projectId) throw new AppError('INTERNAL', 'route has no project: set projectParam or use an API key')
  return ctx.projectId
}
