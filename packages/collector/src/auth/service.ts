import { randomUUID } from 'node:crypto'
import { ACCESS_TOKEN_TTL_SECONDS, type AuthResult, type Role, type Tokens, type User } from '@llmguard/shared'
import type { Db, Sql } from '../db/connect.js'
import { AppError } from '../http/errors.js'
import { limitAddress } from './address.js'
import { dummyHash, hashPassword, verifyPassword } from './passwords.js'
import * as store from './store.js'
import type { TokenSigner } from './tokens.js'

/**
 * Login attempt limits (SPEC "Auth"), per LOGIN_LIMITS.windowMs, counted per email and per
 * client address, in this order (a try refused by one is not counted by the next):
 * - `perEmailAndAddress`: tries at one account from one address (an IPv6 /64), the usual
 *   guessing limit;
 * - `perAddress`: tries from one address at all accounts together (an IPv6 /56, what one home
 *   line is usually given);
 * - `perEmail`: failed passwords for one account from all addresses together, which bounds
 *   guessing spread over many addresses. Each address adds at most `perEmailAndAddress` to it,
 *   so spending it takes ten IPv4 addresses or four IPv6 /56 networks, not one; and it does
 *   not apply at an address the account logged in from in the last `knownAddressDays`, so
 *   spending it does not lock the owner out where they usually log in.
 */
export const LOGIN_LIMITS = {
  windowMs: 15 * 60 * 1000,
  perEmailAndAddress: 10,
  perEmail: 100,
  perAddress: 30,
  knownAddressDays: 30,
}

const signupClosed = () => new AppError('SIGNUP_CLOSED', 'registration is closed on this instance')
const emailTaken = () => new AppError('CONFLICT', 'an account with this email already exists')

export interface AuthServiceDeps {
  sql: Sql
  signer: TokenSigner
  allowSignup: boolean
  /** Registrations per client address per LOGIN_LIMITS.windowMs (SIGNUP_LIMIT). */
  signupLimit?: number
}

export const toUser = (row: store.UserRow): User => ({
  id: row.id,
  email: row.email,
  name: row.name,
  role: row.role,
  createdAt: row.created_at.toISOString(),
})

const invalidCredentials = () => new AppError('INVALID_CREDENTIALS', 'invalid email or password')
/** No user has this id: the known-address lookup of an unknown email. */
const NO_USER = '00000000-0000-0000-0000-000000000000'

export function createAuthService({ sql, signer, allowSignup, signupLimit = 20 }: AuthServiceDeps) {
  /** Starts a new refresh-token family (a session) for the user, or continues `familyId`. */
  async function issueTokens(db: Db, user: { id: string; email: string; role: Role }, familyId: string = randomUUID()): Promise<Required<Tokens>> {
    const refresh = await signer.signRefresh(user.id, familyId)
    await store.insertRefreshToken(db, { id: refresh.tokenId, userId: user.id, familyId, hash: refresh.hash, expiresAt: refresh.expiresAt })
    const accessToken = await signer.signAccess({ userId: user.id, email: user.email, role: user.role, sessionId: familyId })
    return { accessToken, refreshToken: refresh.token, expiresIn: ACCESS_TOKEN_TTL_SECONDS }
  }

  /**
   * Counts one try against each subject in the current LOGIN_LIMITS window (old windows pruned
   * now and then); `refuse` is the 429 with the window's end as Retry-After.
   */
  async function countAttempt(subjects: string[]) {
    const windowStart = new Date(Math.floor(Date.now() / LOGIN_LIMITS.windowMs) * LOGIN_LIMITS.windowMs)
    const counts = await store.countLoginAttempt(sql, subjects, windowStart)
    if (Math.random() < 0.02) await store.pruneLoginAttempts(sql, new Date(windowStart.getTime() - LOGIN_LIMITS.windowMs))
    const refuse = (what: string): never => {
      const retryAfter = Math.max(1, Math.ceil((windowStart.getTime() + LOGIN_LIMITS.windowMs - Date.now()) / 1000))
      throw new AppError('RATE_LIMITED', `${what}; try again later`, { retryAfter }, { 'retry-after': String(retryAfter) })
    }
    return { windowStart, counts, refuse }
  }

  return {
    async register(input: { email: string; password: string; name?: string; ip: string }): Promise<Required<AuthResult>> {
      // every try counts against the address, refused ones too: each account brings its own plan
      // allowance and RCA budget, and a taken email's 409 answers who has an account
      const tries = await countAttempt([`signup:${limitAddress(input.ip, 56)}`])
      if (tries.counts[0]! > signupLimit) tries.refuse('too many sign-ups from this address')
      // the answers that need no password hash come first: argon2id is the expensive part, and
      // a flood of sign-ups to a closed instance (or for a taken email) must not buy any of it.
      // The transaction below checks both again under the lock.
      if (!allowSignup && (await store.anyUserExists(sql))) throw signupClosed()
      if (await store.findUserByEmail(sql, input.email)) throw emailTaken()
      const passwordHash = await hashPassword(input.password)
      const user = await sql.begin(async (tx) => {
        await store.lockRegistrations(tx)
        const first = !(await store.anyUserExists(tx))
        if (!first && !allowSignup) throw signupClosed()
        const row = await store.insertUser(tx, {
          email: input.email,
          name: input.name ?? null,
          passwordHash,
          // the first account of a fresh install administers it
          role: first ? 'admin' : 'user',
        })
        if (!row) throw emailTaken()
        return row
      })
      // where the account was made is where its owner logs in from
      await store.rememberLoginAddress(sql, user.id, limitAddress(input.ip))
      return { user: toUser(user), tokens: await issueTokens(sql, user) }
    },

    async login(input: { email: string; password: string; ip: string }): Promise<Required<AuthResult>> {
      // counted in order, each limit only for the tries the ones before let through: a try
      // refused at one account from one address counts for neither the address nor the account
      const address = limitAddress(input.ip)
      const here = `login:${address} ${input.email}`
      const tries = await countAttempt([here])
      if (tries.counts[0]! > LOGIN_LIMITS.perEmailAndAddress) tries.refuse('too many login attempts')
      const wide = `ip:${limitAddress(input.ip, 56)}`
      const [fromAddress = 0] = await store.countLoginAttempt(sql, [wide], tries.windowStart)
      if (fromAddress > LOGIN_LIMITS.perAddress) tries.refuse('too many login attempts')
      // a place in the account's count is taken before the password is checked (tries arriving
      // together must not all pass a count none of them has added to yet), and given back when
      // the password is right: the count holds failed and pending tries only. Where the owner
      // logged in lately, the count does not apply: whoever spent it elsewhere cannot lock
      // them out there. (The lookup runs for unknown emails too, so it reveals no account.)
      const user = await store.findUserByEmail(sql, input.email)
      const known = await store.knownLoginAddress(sql, user?.id ?? NO_USER, address, LOGIN_LIMITS.knownAddressDays)
      const account = `email:${input.email}`
      if (!known && !(await store.takeLoginAttempt(sql, account, tries.windowStart, LOGIN_LIMITS.perEmail))) {
        tries.refuse('too many failed logins for this account')
      }
      // an unknown email costs one argon2 verification too, so timing does not reveal accounts
      const ok = await verifyPassword(user?.password_hash ?? (await dummyHash()), input.password)
      if (!user || !ok) throw invalidCredentials()
      await store.forgiveLoginAttempt(sql, known ? [here, wide] : [here, wide, account], tries.windowStart)
      await store.rememberLoginAddress(sql, user.id, address)
      return { user: toUser(user), tokens: await issueTokens(sql, user) }
    },

    /**
     * Checks the signed-in user's password before a change that needs it (the email, which is
     * what signs in: an access token taken from the owner must not be enough to lock them out).
     * Wrong → 403; tries count as logins do, per account, and a right one is given back.
     */
    async confirmPassword(userId: string, password: string): Promise<void> {
      const subject = `confirm:${userId}`
      const tries = await countAttempt([subject])
      if (tries.counts[0]! > LOGIN_LIMITS.perEmailAndAddress) tries.refuse('too many wrong passwords')
      const user = await store.findUserById(sql, userId)
      if (!user) throw new AppError('UNAUTHORIZED', 'account no longer exists')
      if (!(await verifyPassword(user.password_hash, password))) throw new AppError('FORBIDDEN', "currentPassword is not this account's password")
      await store.forgiveLoginAttempt(sql, [subject], tries.windowStart)
    },

    /**
     * Exchanges a refresh token for a new pair. The presented token is rotated out; presenting
     * it again means two parties hold the chain, so the whole family is revoked.
     */
    async refresh(token: string): Promise<Required<Tokens>> {
      await signer.verifyRefresh(token)
      const hash = signer.hashRefresh(token)
      const issued = await sql.begin(async (tx) => {
        const claimed = await store.claimRefreshToken(tx, hash)
        if (!claimed) return undefined
        const user = await store.findUserById(tx, claimed.user_id)
        if (!user) return undefined
        return issueTokens(tx, user, claimed.family_id)
      })
      if (issued) return issued
      const row = await store.findRefreshToken(sql, hash)
      if (row?.rotated_at) {
        await store.revokeFamily(sql, row.family_id)
        throw new AppError('TOKEN_REUSED', 'refresh token already used; every session of this login is revoked')
      }
      if (row && !row.revoked_at && row.expires_at <= new Date()) throw new AppError('TOKEN_EXPIRED', 'refresh token expired')
      throw new AppError('UNAUTHORIZED', 'refresh token revoked or unknown')
    },

    /** Ends the session: the token's whole family is revoked. */
    async logout(token: string): Promise<void> {
      let claims
      try {
        claims = await signer.verifyRefresh(token)
      } catch (err) {
        // an expired session is already over: logging it out succeeds
        if (err instanceof AppError && err.code === 'TOKEN_EXPIRED') return
        throw err
      }
      await store.revokeFamily(sql, claims.familyId)
    },

    async me(userId: string): Promise<User> {
      const user = await store.findUserById(sql, userId)
      if (!user) throw new AppError('UNAUTHORIZED', 'account no longer exists')
      return toUser(user)
    },
  }
}

export type AuthService = ReturnType<typeof createAuthService>
