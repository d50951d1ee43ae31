import type { Db } from '../db/connect.js'

/** The project's policy version and stored settings, read together so the ETag matches the body. */
export async function findPolicySource(
  sql: Db,
  projectId: string,
): Promise<{ policy_version: number; settings: Record<string, unknown> | null } | undefined> {
  const [row] = await sql<{ policy_version: number; settings: Record<string, unknown> | null }[]>`
    select p.policy_version, s.settings
    from projects p left join project_settings s on s.project_id = p.id
    where p.id = ${projectId}`
  return row
}

/** Every change of the effective policy calls this in the transaction that makes the change. */
export async function bumpPolicyVersion(sql: Db, projectId: string): Promise<number> {
  const [row] = await sql<{ policy_version: number }[]>`
    update projects set policy_version = policy_version + 1 where id = ${projectId} returning policy_version`
  return row?.policy_version ?? 0
}

/** Just the version: enough to tell whether a cached policy is still current. */
export async function findPolicyVersion(sql: Db, projectId: string): Promise<number | undefined> {
  const [row] = await sql<{ policy_version: number }[]>`select policy_version from projects where id = ${projectId}`
  return row?.policy_version
}
