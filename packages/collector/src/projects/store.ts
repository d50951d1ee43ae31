import type { Db } from '../db/connect.js'
import { countCapped } from '../db/page.js'

export interface ProjectRow {
  id: string
  user_id: string
  name: string
  created_at: Date
  updated_at: Date
}

export interface ApiKeyRow {
  id: string
  project_id: string
  name: string | null
  last4: string
  created_at: Date
  revoked_at: Date | null
  rotated_from: string | null
}

const PROJECT_COLUMNS = ['id', 'user_id', 'name', 'created_at', 'updated_at']
const KEY_COLUMNS = ['id', 'project_id', 'name', 'last4', 'created_at', 'revoked_at', 'rotated_from']

/**
 * A new project, unless the user has `max` already: undefined then. Call it in a transaction
 * holding `lockUser`: creates at the same moment then count one after another.
 */
export async function insertProject(sql: Db, userId: string, name: string, max: number): Promise<ProjectRow | undefined> {
  const [row] = await sql<ProjectRow[]>`
    insert into projects (user_id, name)
    select ${userId}, ${name} where (select count(*) from projects where user_id = ${userId}) < ${max}
    returning ${sql(PROJECT_COLUMNS)}`
  return row
}

/** Serialises a user's creates (the projects cap) until the transaction ends. */
export async function lockUser(tx: Db, userId: string): Promise<void> {
  await tx`select 1 from users where id = ${userId} for update`
}

/** Serialises a project's key creates (the keys cap) until the transaction ends. */
export async function lockProject(tx: Db, projectId: string): Promise<void> {
  await tx`select 1 from projects where id = ${projectId} for update`
}

export async function findProject(sql: Db, id: string): Promise<ProjectRow | undefined> {
  const [row] = await sql<ProjectRow[]>`select ${sql(PROJECT_COLUMNS)} from projects where id = ${id}`
  return row
}

export async function listProjects(sql: Db, userId: string, page: number, limit: number): Promise<{ rows: ProjectRow[]; total: number }> {
  const rows = await sql<ProjectRow[]>`
    select ${sql(PROJECT_COLUMNS)} from projects where user_id = ${userId}
    order by created_at desc, id desc
    limit ${limit} offset ${(page - 1) * limit}`
  const total = await countCapped(sql, sql`select 1 from projects where user_id = ${userId}`)
  return { rows, total }
}

export async function renameProject(sql: Db, id: string, name: string): Promise<ProjectRow | undefined> {
  const [row] = await sql<ProjectRow[]>`
    update projects set name = ${name}, updated_at = now() where id = ${id} returning ${sql(PROJECT_COLUMNS)}`
  return row
}

/** Deletes the project; keys, settings and its data go with it (on delete cascade). */
export async function deleteProject(sql: Db, id: string): Promise<boolean> {
  const rows = await sql`delete from projects where id = ${id}`
  return rows.count > 0
}

/**
 * A new key, unless the project has `max` keys in use already (revoked ones do not count):
 * undefined then. Call it in a transaction holding `lockProject`.
 */
export async function insertKey(
  sql: Db,
  key: { projectId: string; name: string | null; hash: string; last4: string; rotatedFrom?: string },
  max: number,
): Promise<ApiKeyRow | undefined> {
  const [row] = await sql<ApiKeyRow[]>`
    insert into api_keys (project_id, name, key_hash, last4, rotated_from)
    select ${key.projectId}, ${key.name}, ${key.hash}, ${key.last4}, ${key.rotatedFrom ?? null}
    where (select count(*) from api_keys where project_id = ${key.projectId} and revoked_at is null) < ${max}
    returning ${sql(KEY_COLUMNS)}`
  return row
}

export async function findKey(sql: Db, projectId: string, keyId: string): Promise<ApiKeyRow | undefined> {
  const [row] = await sql<ApiKeyRow[]>`
    select ${sql(KEY_COLUMNS)} from api_keys where id = ${keyId} and project_id = ${projectId}`
  return row
}

export async function listKeys(sql: Db, projectId: string, page: number, limit: number): Promise<{ rows: ApiKeyRow[]; total: number }> {
  const rows = await sql<ApiKeyRow[]>`
    select ${sql(KEY_COLUMNS)} from api_keys where project_id = ${projectId}
    order by created_at desc, id desc
    limit ${limit} offset ${(page - 1) * limit}`
  const total = await countCapped(sql, sql`select 1 from api_keys where project_id = ${projectId}`)
  return { rows, total }
}

/** Revokes an active key; undefined when it is not active (or not this project's). */
export async function revokeKey(sql: Db, projectId: string, keyId: string): Promise<ApiKeyRow | undefined> {
  const [row] = await sql<ApiKeyRow[]>`
    update api_keys set revoked_at = now()
    where id = ${keyId} and project_id = ${projectId} and revoked_at is null
    returning ${sql(KEY_COLUMNS)}`
  return row
}

export interface ActiveKey {
  key_id: string
  project_id: string
  user_id: string
  rate_limit: number
}

/** The hot path of every API-key request (on a cache miss): one index lookup by hash. */
export async function findActiveKeyByHash(sql: Db, hash: string, defaultRateLimit: number): Promise<ActiveKey | undefined> {
  const [row] = await sql<ActiveKey[]>`
    select k.id as key_id, k.project_id, p.user_id,
           coalesce((s.settings->>'rateLimit')::int, ${defaultRateLimit}::int) as rate_limit
    from api_keys k
    join projects p on p.id = k.project_id
    left join project_settings s on s.project_id = k.project_id
    where k.key_hash = ${hash} and k.revoked_at is null`
  return row
}
