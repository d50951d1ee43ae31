import type { Role } from '@llmguard/shared'
import type { Db } from '../db/connect.js'

export interface UserRow {
  id: string
  email: string
  name: string | null
  password_hash: string
  role: Role
  created_at: Date
}

/** Serialises registrations, so "the first user is admin" holds when two register at once. */
const REGISTER_LOCK = 7_400_002

export async function lockRegistrations(sql: Db): Promise<void> {
  await sql`select pg_advisory_xact_lock(${REGISTER_LOCK})`
}

export async function anyUserExists(sql: Db): Promise<boolean> {
  const [row] = await sql<{ exists: boolean }[]>`select exists (select 1 from users) as exists`
  return row!.exists
}

/** Inserts a user; undefined when the email is taken. */
export async function insertUser(
  sql: Db,
  user: { email: string; name: string | null; passwordHash: string; role: Role },
): Promise<UserRow | undefined> {
  const [row] = await sql<UserRow[]>`
    insert into users (email, name, password_hash, role)
    values (${user.email}, ${user.name}, ${user.passwordHash}, ${user.role})
    on conflict (email) do nothing
    returning id, email, name, password_hash, role, created_at`
  return row
}

export async function findUserByEmail(sql: Db, email: string): Promise<UserRow | undefined> {
  const [row] = await sql<UserRow[]>`
    select id, email, name, password_hash, role, created_at from users where email = ${email}`
  return row
}

export async function findUserById(sql: Db, id: string): Promise<UserRow | undefined> {
  const [row] = await sql<UserRow[]>`
    select id, email, name, password_hash, role, created_at from users where id = ${id}`
  return row
}

/** Updates name and/or email; undefined when the new email belongs to someone else. */
export async function updateUser(sql: Db, id: string, patch: { name?: string | null; email?: string }): Promise<UserRow | undefined> {
  const [row] = await sql<UserRow[]>`
    update users set
      name = case when ${patch.name !== undefined} then ${patch.name ?? null} else name end,
      email = coalesce(${patch.email ?? null}, email),
      updated_at = now()
    where id = ${id}
      and not exists (select 1 from users other where other.email = ${patch.email ?? null} and other.id <> ${id})
    returning id, email, name, password_hash, role, created_at`
  return row
}

export async function insertRefreshToken(
  sql: Db,
  token: { id: string; userId: string; familyId: string; hash: string; expiresAt: Date },
): Promise<void> {
  await sql`
    insert into refresh_tokens (id, user_id, family_id, token_hash, expires_at)
    values (${token.id}, ${token.userId}, ${token.familyId}, ${token.hash}, ${token.expiresAt})`
}

/**
 * Marks a live token rotated, atomically: of two concurrent refreshes with one token, exactly
 * one gets the row back. Undefined when the token is unknown, rotated, revoked or expired.
 */
export async function claimRefreshToken(sql: Db, hash: string): Promise<{ user_id: string; family_id: string } | undefined> {
  const [row] = await sql<{ user_id: string; family_id: string }[]>`
    update refresh_tokens set rotated_at = now()
    where token_hash = ${hash} and rotated_at is null and revoked_at is null and expires_at > now()
      -- a family with any revoked token is over: a logout racing a refresh revokes the rows it
      -- sees, not the successor the refresh commits meanwhile, which must not live on
      and not exists (select 1 from refresh_tokens f where f.family_id = refresh_tokens.family_id and f.revoked_at is not null)
    returning user_id, family_id`
  return row
}

export async function findRefreshToken(
  sql: Db,
  hash: string,
): Promise<{ family_id: string; rotated_at: Date | null; revoked_at: Date | null; expires_at: Date } | undefined> {
  const [row] = await sql<{ family_id: string; rotated_at: Date | null; revoked_at: Date | null; expires_at: Date }[]>`
    select family_id, rotated_at, revoked_at, expires_at from refresh_tokens where token_hash = ${hash}`
  return row
}

/**
 * Where an access token's holder stands now, in one primary-key lookup per request: the user's
 * current role, and whether the session (refresh-token family) the token was issued in was
 * ended (logged out, or revoked on a reused token). Undefined when the user is gone (deleted,
 * by hand in the database too): the token, signed and unexpired, would otherwise act for no one
 * for up to 15 minutes, and a write naming that user fail on its foreign key.
 */
export async function tokenHolder(sql: Db, userId: string, familyId: string | undefined): Promise<{ role: Role; sessionEnded: boolean } | undefined> {
  const [row] = await sql<{ role: Role; sessionEnded: boolean }[]>`
    select u.role, exists (
      select 1 from refresh_tokens where family_id = ${familyId ?? null} and revoked_at is not null
    ) as "sessionEnded"
    from users u where u.id = ${userId}`
  return row
}

export async function revokeFamily(sql: Db, familyId: string): Promise<number> {
  const rows = await sql`update refresh_tokens set revoked_at = now() where family_id = ${familyId} and revoked_at is null`
  return rows.count
}

/** Counts one login attempt for each subject in the current window; returns the counts. */
export async function countLoginAttempt(sql: Db, subjects: string[], windowStart: Date): Promise<number[]> {
  const rows = await sql<{ subject: string; attempts: number }[]>`
    insert into login_attempts ${sql(subjects.map((subject) => ({ subject, window_start: windowStart, attempts: 1 })))}
    on conflict (subject, window_start) do update set attempts = login_attempts.attempts + 1
    returning subject, attempts`
  return subjects.map((s) => rows.find((r) => r.subject === s)?.attempts ?? 0)
}

/** Counts one try for a subject in a window unless it has `limit` already; false when it had. */
export async function takeLoginAttempt(sql: Db, subject: string, windowStart: Date, limit: number): Promise<boolean> {
  const rows = await sql`
    insert into login_attempts (subject, window_start, attempts) values (${subject}, ${windowStart}, 1)
    on conflict (subject, window_start) do update set attempts = login_attempts.attempts + 1
      where login_attempts.attempts < ${limit}
    returning attempts`
  return rows.length > 0
}

/** Whether the user logged in from this address (as the limits count it) in the last `days`. */
export async function knownLoginAddress(sql: Db, userId: string, address: string, days: number): Promise<boolean> {
  const [row] = await sql`
    select 1 from login_known_addresses
    where user_id = ${userId} and address = ${address} and last_login_at > now() - ${days} * interval '1 day'`
  return Boolean(row)
}

export async function rememberLoginAddress(sql: Db, userId: string, address: string): Promise<void> {
  await sql`
    insert into login_known_addresses (user_id, address) values (${userId}, ${address})
    on conflict (user_id, address) do update set last_login_at = now()`
}

/** A successful login does not count against its subjects. */
export async function forgiveLoginAttempt(sql: Db, subjects: string[], windowStart: Date): Promise<void> {
  await sql`
    update login_attempts set attempts = greatest(attempts - 1, 0)
    where subject = any(${sql.array(subjects)}) and window_start = ${windowStart}`
}

export async function pruneLoginAttempts(sql: Db, before: Date): Promise<void> {
  await sql`delete from login_attempts where window_start < ${before}`
}
