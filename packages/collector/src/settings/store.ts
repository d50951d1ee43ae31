import type { Db } from '../db/connect.js'

export interface SettingsRow {
  settings: Record<string, unknown>
  updated_at: Date
}

/** The stored document, or undefined when the project never changed a setting. */
export async function findProjectSettings(sql: Db, projectId: string): Promise<SettingsRow | undefined> {
  const [row] = await sql<SettingsRow[]>`
    select settings, updated_at from project_settings where project_id = ${projectId}`
  return row
}

/**
 * The settings as `GET` shows them: the stored row, or for a project whose settings were never
 * changed the defaults as of the project's creation (undefined: no such project).
 */
export async function projectSettingsView(sql: Db, projectId: string): Promise<{ settings: SettingsRow['settings'] | undefined; updatedAt: Date } | undefined> {
  const [row] = await sql<{ settings: SettingsRow['settings'] | null; updatedAt: Date }[]>`
    select s.settings, coalesce(s.updated_at, p.created_at) as "updatedAt"
    from projects p left join project_settings s on s.project_id = p.id
    where p.id = ${projectId}`
  return row && { settings: row.settings ?? undefined, updatedAt: row.updatedAt }
}

/**
 * Locks the project's settings row for a read-modify-write, creating it (empty) first if needed;
 * undefined when the project is gone. The project row is locked first, the order a project's
 * deletion takes them in (its cascade reaches the settings row after the project row): a change
 * racing a deletion waits for it and then finds no project, instead of failing on the foreign
 * key or deadlocking. `for no key update`, so ingest's foreign-key checks on the row never wait.
 */
export async function lockProjectSettings(sql: Db, projectId: string): Promise<SettingsRow | undefined> {
  if (!(await sql`select 1 from projects where id = ${projectId} for no key update`).length) return undefined
  await sql`insert into project_settings (project_id) values (${projectId}) on conflict (project_id) do nothing`
  const [row] = await sql<SettingsRow[]>`
    select settings, updated_at from project_settings where project_id = ${projectId} for update`
  return row!
}

export async function saveProjectSettings(sql: Db, projectId: string, settings: Record<string, unknown>): Promise<SettingsRow> {
  const [row] = await sql<SettingsRow[]>`
    update project_settings set settings = ${sql.json(settings as never)}, updated_at = now()
    where project_id = ${projectId}
    returning settings, updated_at`
  return row!
}
