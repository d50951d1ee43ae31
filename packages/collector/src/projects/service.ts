import type { ApiKey, CreatedApiKey, Page, Project } from '@llmguard/shared'
import type { Db, Sql } from '../db/connect.js'
import { toPage } from '../db/page.js'
import { AppError, notFound } from '../http/errors.js'
import type { Principal } from '../http/route.js'
import { generateApiKey, hashApiKey, type KeyVerifier } from './keys.js'
import * as store from './store.js'

export interface ProjectServiceDeps {
  sql: Sql
  pepper: string
  keys: KeyVerifier
}

const iso = (d: Date) => d.toISOString()
const isoOrNull = (d: Date | null) => (d ? d.toISOString() : null)

export const toProject = (row: store.ProjectRow): Project => ({
  id: row.id,
  userId: row.user_id,
  name: row.name,
  createdAt: iso(row.created_at),
  updatedAt: iso(row.updated_at),
})

const toApiKey = (row: store.ApiKeyRow): ApiKey => ({
  id: row.id,
  projectId: row.project_id,
  name: row.name,
  last4: row.last4,
  createdAt: iso(row.created_at),
  revokedAt: isoOrNull(row.revoked_at),
  rotatedFrom: row.rotated_from,
})

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * What one account may hold: far past what a team uses (a project per app and environment, a key
 * per service), and a bound on what a single account can make the database store.
 */
export const MAX_PROJECTS_PER_USER = 100
export const MAX_ACTIVE_KEYS_PER_PROJECT = 100

export function createProjectService({ sql, pepper, keys }: ProjectServiceDeps) {
  async function issueKey(db: Db, projectId: string, name: string | null, rotatedFrom?: string): Promise<CreatedApiKey> {
    const key = generateApiKey()
    // a rotation has revoked the old key first: it never meets the limit
    const row = await store.insertKey(db, { projectId, name, hash: hashApiKey(pepper, key), last4: key.slice(-4), rotatedFrom }, MAX_ACTIVE_KEYS_PER_PROJECT)
    if (!row) {
      throw new AppError('CONFLICT', `a project has at most ${MAX_ACTIVE_KEYS_PER_PROJECT} API keys in use: revoke one first`, { limit: MAX_ACTIVE_KEYS_PER_PROJECT })
    }
    return { id: row.id, name: row.name, key, last4: row.last4, createdAt: iso(row.created_at) }
  }

  return {
    /**
     * Ownership: may this caller act on this project? A user must own it; an API key must be
     * one of its keys. Unknown or malformed id → 404, someone else's → 403. Domains whose routes
     * reach a project indirectly (e.g. /v1/incidents/:id) call this with the row's project id.
     */
    async assertAccess(principal: Principal, projectId: string): Promise<void> {
      if (!UUID.test(projectId)) throw notFound('project')
      if (principal.kind === 'apiKey') {
        // a UUID in either case is the same id (PostgreSQL reads it so); the key's is stored lower-case
        if (principal.projectId !== projectId.toLowerCase()) throw new AppError('FORBIDDEN', 'this API key belongs to another project')
        return
      }
      if (principal.kind !== 'user') throw new AppError('UNAUTHORIZED', 'authentication required')
      const project = await store.findProject(sql, projectId)
      if (!project) throw notFound('project')
      if (project.user_id !== principal.userId) throw new AppError('FORBIDDEN', 'this project belongs to another account')
    },

    async create(userId: string, name: string): Promise<Project> {
      const row = await sql.begin(async (tx) => {
        await store.lockUser(tx, userId)
        return store.insertProject(tx, userId, name, MAX_PROJECTS_PER_USER)
      })
      if (!row) throw new AppError('CONFLICT', `an account has at most ${MAX_PROJECTS_PER_USER} projects: delete one first`, { limit: MAX_PROJECTS_PER_USER })
      return toProject(row)
    },

    async list(userId: string, page: number, limit: number): Promise<Page<Project>> {
      const { rows, total } = await store.listProjects(sql, userId, page, limit)
      return toPage(rows.map(toProject), page, limit, total)
    },

    async get(projectId: string): Promise<Project> {
      const row = await store.findProject(sql, projectId)
      if (!row) throw notFound('project')
      return toProject(row)
    },

    async rename(projectId: string, name: string): Promise<Project> {
      const row = await store.renameProject(sql, projectId, name)
      if (!row) throw notFound('project')
      return toProject(row)
    },

    async remove(projectId: string): Promise<void> {
      if (!(await store.deleteProject(sql, projectId))) throw notFound('project')
      // its keys are gone with it: no instance may keep accepting them from cache
      await keys.invalidate()
    },

    async listKeys(projectId: string, page: number, limit: number): Promise<Page<ApiKey>> {
      const { rows, total } = await store.listKeys(sql, projectId, page, limit)
      return toPage(rows.map(toApiKey), page, limit, total)
    },

    createKey: (projectId: string, name: string | undefined): Promise<CreatedApiKey> =>
      sql.begin(async (tx) => {
        await store.lockProject(tx, projectId)
        return issueKey(tx, projectId, name ?? null)
      }) as Promise<CreatedApiKey>,

    /** A new key with the old one's name; the old one stops working at once (no grace period). */
    async rotateKey(projectId: string, keyId: string): Promise<CreatedApiKey> {
      const created = await sql.begin(async (tx) => {
        await store.lockProject(tx, projectId)
        const old = await store.revokeKey(tx, projectId, keyId)
        if (!old) {
          if (await store.findKey(tx, projectId, keyId)) throw new AppError('CONFLICT', 'this key is already revoked')
          throw notFound('API key')
        }
        return issueKey(tx, projectId, old.name, old.id)
      })
      await keys.invalidate()
      return created
    },

    /** Revokes a key; revoking a revoked key changes nothing and succeeds. */
    async revokeKey(projectId: string, keyId: string): Promise<void> {
      const revoked = await store.revokeKey(sql, projectId, keyId)
      if (!revoked && !(await store.findKey(sql, projectId, keyId))) throw notFound('API key')
      if (revoked) await keys.invalidate()
    },
  }
}

export type ProjectService = ReturnType<typeof createProjectService>
