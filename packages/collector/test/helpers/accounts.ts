import { randomUUID } from 'node:crypto'
import { ApiError, type AuthResult, type CreatedApiKey, type Project } from '@llmguard/shared'
import type { TestCollector } from './collector.js'

export interface TestUser {
  id: string
  email: string
  password: string
  accessToken: string
  refreshToken: string
}

export const PASSWORD = 'correct horse battery staple'

/** Registers a user (one argon2 hash, ~60 ms: keep the count per file small). */
export async function signUp(collector: TestCollector, email = `u-${randomUUID()}@example.com`): Promise<TestUser> {
  const result = await collector.client.post<AuthResult>('/v1/auth/register', { email, password: PASSWORD })
  return {
    id: result.user.id,
    email: result.user.email,
    password: PASSWORD,
    accessToken: result.tokens.accessToken,
    refreshToken: result.tokens.refreshToken!,
  }
}

export async function createProject(collector: TestCollector, user: TestUser, name = 'demo'): Promise<Project> {
  return collector.client.post<Project>('/v1/projects', { name }, { token: user.accessToken })
}

export async function createKey(collector: TestCollector, user: TestUser, projectId: string, name?: string): Promise<CreatedApiKey> {
  return collector.client.post<CreatedApiKey>(`/v1/projects/${projectId}/keys`, name ? { name } : {}, { token: user.accessToken })
}

/** A user with one project and one API key. */
export async function setupProject(collector: TestCollector, user?: TestUser) {
  const owner = user ?? (await signUp(collector))
  const project = await createProject(collector, owner)
  const key = await createKey(collector, owner, project.id, 'default')
  return { user: owner, project, key }
}

/** The ApiError a call fails with (fails the test when the call succeeds). */
export async function failure(call: Promise<unknown>): Promise<ApiError> {
  try {
    await call
  } catch (err) {
    if (err instanceof ApiError) return err
    throw err
  }
  throw new Error('expected the request to fail')
}

export async function count(collector: TestCollector, table: string): Promise<number> {
  const [row] = await collector.sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${table}`)
  return row!.n
}
