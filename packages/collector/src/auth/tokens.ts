import { createHmac, randomUUID } from 'node:crypto'
import { errors, jwtVerify, SignJWT } from 'jose'
import { z } from 'zod'
import { ACCESS_TOKEN_TTL_SECONDS, REFRESH_TOKEN_TTL_SECONDS, roleSchema, type Role } from '@llmguard/shared'
import { AppError } from '../http/errors.js'

const ISSUER = 'llmguard'
const ACCESS_AUDIENCE = 'llmguard-api'
// a refresh token is signed with its own secret and audience: it can never pass as an access token
const REFRESH_AUDIENCE = 'llmguard-refresh'
/** Pinned: a token naming any other algorithm (none, RS256, HS512 …) is refused before its signature is looked at. */
const ALGORITHMS = ['HS256']

export interface AccessClaims {
  userId: string
  email: string
  role: Role
  /**
   * The session (refresh-token family) the token was issued in (`sid`): logging out or a
   * detected token theft ends it, and its access tokens with it. Tokens of collectors from
   * before the claim have none, and live out their 15 minutes.
   */
  sessionId?: string
}

export interface RefreshClaims {
  tokenId: string
  userId: string
  familyId: string
}

const accessPayload = z.object({ sub: z.uuid(), email: z.string(), role: roleSchema, sid: z.uuid().optional() })
const refreshPayload = z.object({ sub: z.uuid(), jti: z.uuid(), fam: z.uuid() })

export interface TokenSigner {
  signAccess(claims: AccessClaims): Promise<string>
  verifyAccess(token: string): Promise<AccessClaims>
  /** A new refresh token: its row id (jti), its family and the HMAC under which it is stored. */
  signRefresh(userId: string, familyId: string): Promise<{ token: string; tokenId: string; hash: string; expiresAt: Date }>
  verifyRefresh(token: string): Promise<RefreshClaims>
  /** The stored form of a refresh token (never the token itself). */
  hashRefresh(token: string): string
}

const unauthorized = (message: string) => new AppError('UNAUTHORIZED', message)

export function createTokenSigner(secrets: { jwtSecret: string; refreshTokenSecret: string }): TokenSigner {
  const accessKey = new TextEncoder().encode(secrets.jwtSecret)
  const refreshKey = new TextEncoder().encode(secrets.refreshTokenSecret)
  const hashRefresh = (token: string) => createHmac('sha256', secrets.refreshTokenSecret).update(token).digest('hex')

  async function verify(token: string, key: Uint8Array, audience: string) {
    try {
      const { payload } = await jwtVerify(token, key, { algorithms: ALGORITHMS, issuer: ISSUER, audience })
      return payload
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new AppError('TOKEN_EXPIRED', 'token expired')
      throw unauthorized('invalid token')
    }
  }

  return {
    hashRefresh,
    signAccess: ({ userId, email, role, sessionId }) =>
      new SignJWT(sessionId ? { email, role, sid: sessionId } : { email, role })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(userId)
        .setIssuer(ISSUER)
        .setAudience(ACCESS_AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(`${ACCESS_TOKEN_TTL_SECONDS}s`)
        .sign(accessKey),
    async verifyAccess(token) {
      const parsed = accessPayload.safeParse(await verify(token, accessKey, ACCESS_AUDIENCE))
      if (!parsed.success) throw unauthorized('invalid token')
      return { userId: parsed.data.sub, email: parsed.data.email, role: parsed.data.role, sessionId: parsed.data.sid }
    },
    async signRefresh(userId, familyId) {
      const tokenId = randomUUID()
      const expiresAt = new Date(Date.now() + REFRESH_TOKEN_TTL_SECONDS * 1000)
      const token = await new SignJWT({ fam: familyId })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(userId)
        .setJti(tokenId)
        .setIssuer(ISSUER)
        .setAudience(REFRESH_AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
        .sign(refreshKey)
      return { token, tokenId, hash: hashRefresh(token), expiresAt }
    },
    async verifyRefresh(token) {
      const parsed = refreshPayload.safeParse(await verify(token, refreshKey, REFRESH_AUDIENCE))
      if (!parsed.success) throw unauthorized('invalid refresh token')
      return { tokenId: parsed.data.jti, userId: parsed.data.sub, familyId: parsed.data.fam }
    },
  }
}
