import {
  projectSettingsSchema,
  type ProjectSettings,
  type ProjectSettingsPatch,
  type ProjectSettingsResponse,
  type UserSettings,
  type UserSettingsPatch,
} from '@llmguard/shared'
import { findUserById, updateUser, type UserRow } from '../auth/store.js'
import type { Db, Sql } from '../db/connect.js'
import { AppError, notFound } from '../http/errors.js'
import * as store from './store.js'

/** Runs inside the transaction that changes a project's settings (e.g. bumping the policy version). */
export type SettingsChangeHook = (db: Db, projectId: string, before: ProjectSettings, after: ProjectSettings) => Promise<void>
/** Runs after that transaction commits (e.g. telling other instances to drop cached rate limits). */
export type SettingsCommitHook = (projectId: string, before: ProjectSettings, after: ProjectSettings) => Promise<void>

export interface SettingsServiceDeps {
  sql: Sql
  onChange?: SettingsChangeHook[]
  afterCommit?: SettingsCommitHook[]
}

/** A stored document read through the current schema: fields added since get their defaults. */
export function parseStoredSettings(stored: Record<string, unknown> | undefined): ProjectSettings {
  const parsed = projectSettingsSchema.safeParse(stored ?? {})
  if (parsed.success) return parsed.data
  // a document a newer schema no longer accepts: keep the valid fields, default the rest
  const valid: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(stored ?? {})) {
    const field = projectSettingsSchema.shape[name as keyof ProjectSettings]
    if (field?.safeParse(value).success) valid[name] = value
  }
  return projectSettingsSchema.parse(valid)
}

const toUserSettings = (row: UserRow): UserSettings => ({
  id: row.id,
  userId: row.id,
  name: row.name,
  email: row.email,
  role: row.role,
  createdAt: row.created_at.toISOString(),
})

export function createSettingsService({ sql, onChange = [], afterCommit = [] }: SettingsServiceDeps) {
  return {
    /** The effective settings of a project (defaults for anything never set). */
    async projectSettings(db: Db, projectId: string): Promise<ProjectSettings> {
      return parseStoredSettings((await store.findProjectSettings(db, projectId))?.settings)
    },

    async getProject(projectId: string): Promise<ProjectSettingsResponse> {
      // a project whose settings were never changed has had its defaults since it was created
      const view = await store.projectSettingsView(sql, projectId)
      return { ...parseStoredSettings(view?.settings), projectId, updatedAt: (view?.updatedAt ?? new Date()).toISOString() }
    },

    async patchProject(projectId: string, patch: ProjectSettingsPatch): Promise<ProjectSettingsResponse> {
      const { before, after, row } = await sql.begin(async (tx) => {
        const locked = await store.lockProjectSettings(tx, projectId)
        if (!locked) throw notFound('project')
        const before = parseStoredSettings(locked.settings)
        const after = projectSettingsSchema.parse({ ...before, ...patch })
        const row = await store.saveProjectSettings(tx, projectId, after)
        for (const hook of onChange) await hook(tx, projectId, before, after)
        return { before, after, row }
      })
      for (const hook of afterCommit) await hook(projectId, before, after)
      return { ...after, projectId, updatedAt: row.updated_at.toISOString() }
    },

    async getUser(userId: string): Promise<UserSettings> {
      const row = await findUserById(sql, userId)
      if (!row) throw new AppError('UNAUTHORIZED', 'account no longer exists')
      return toUserSettings(row)
    },

    async patchUser(userId: string, patch: UserSettingsPatch & { email?: string }): Promise<UserSettings> {
      let row: UserRow | undefined
      try {
        row = await updateUser(sql, userId, patch)
      } catch (err) {
        // two accounts renamed to one email at the same moment: the unique index decides
        if ((err as { code?: string }).code === '23505') row = undefined
        else throw err
      }
      if (!row) {
        if (await findUserById(sql, userId)) throw new AppError('CONFLICT', 'an account with this email already exists')
        throw new AppError('UNAUTHORIZED', 'account no longer exists')
      }
      return toUserSettings(row)
    },
  }
}

export type SettingsService = ReturnType<typeof createSettingsService>
