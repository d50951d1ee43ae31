import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ProjectSettingsResponse, UserSettings } from '@llmguard/shared'
import { startTestCollector, type TestCollector } from './helpers/collector.js'
import { failure, PASSWORD, setupProject, signUp, type TestUser } from './helpers/accounts.js'

let collector: TestCollector
let owner: TestUser
let projectId: string

beforeAll(async () => {
  collector = await startTestCollector()
  ;({ user: owner, project: { id: projectId } } = await setupProject(collector))
})
afterAll(() => collector?.close())

const as = (user: TestUser) => ({ token: user.accessToken })
const projectSettings = () => collector.client.get<ProjectSettingsResponse>(`/v1/projects/${projectId}/settings`, as(owner))

describe('user settings', () => {
  it('reads and changes name and email; role and createdAt are read-only', async () => {
    const user = await signUp(collector)
    const before = await collector.client.get<UserSettings>('/v1/settings/user', as(user))
    expect(before).toMatchObject({ id: user.id, userId: user.id, email: user.email, name: null, role: 'user' })
    const after = await collector.client.patch<UserSettings>('/v1/settings/user', { name: 'Ada', email: 'Ada@Example.com', currentPassword: PASSWORD }, as(user))
    expect(after).toMatchObject({ name: 'Ada', email: 'ada@example.com', role: 'user', createdAt: before.createdAt })
    const cleared = await collector.client.patch<UserSettings>('/v1/settings/user', { name: null }, as(user))
    expect(cleared.name).toBeNull()
    expect(cleared.email).toBe('ada@example.com')
    for (const body of [{ role: 'admin' }, { createdAt: '2020-01-01T00:00:00Z' }, {}, { currentPassword: PASSWORD }, { email: 'nope', currentPassword: PASSWORD }, { name: 'x'.repeat(101) }, { name: 5 }]) {
      const err = await failure(collector.client.patch('/v1/settings/user', body, as(user)))
      expect([err.status, err.code]).toEqual([400, 'VALIDATION_ERROR'])
    }
    expect(await collector.client.get<UserSettings>('/v1/settings/user', as(user))).toEqual(cleared)
    // an unknown or read-only field is the one issue, not followed by "give at least one setting"
    const readOnly = await failure(collector.client.patch('/v1/settings/user', { role: 'user' }, as(user)))
    expect(readOnly.details?.issues).toEqual([{ path: 'body', message: expect.stringContaining('role') }])
    const unknown = await failure(collector.client.patch(`/v1/projects/${projectId}/settings`, { nosuch: 1 }, as(owner)))
    expect(unknown.details?.issues).toHaveLength(1)
    // metadata nested thousands deep: a 400, not a serialiser's stack overflow
    // written by hand: JSON.stringify itself cannot serialise it
    const deep = `{"metadata":${'{"d":'.repeat(6000)}{}${'}'.repeat(6000)}}`
    const tooDeep = await request(`${collector.url}/v1/projects/${projectId}/settings`, { method: 'PATCH', body: deep, headers: { authorization: `Bearer ${owner.accessToken}`, 'content-type': 'application/json' } })
    expect(tooDeep.statusCode).toBe(400)
    expect(((await tooDeep.body.json()) as any).error.details.issues).toEqual([{ path: 'body.metadata', message: 'must nest at most 32 levels deep' }])
  })

  it("409 when the email is someone else's; nothing changes", async () => {
    const user = await signUp(collector)
    const err = await failure(collector.client.patch('/v1/settings/user', { email: owner.email.toUpperCase(), currentPassword: PASSWORD }, as(user)))
    expect([err.status, err.code]).toEqual([409, 'CONFLICT'])
    expect((await collector.client.get<UserSettings>('/v1/settings/user', as(user))).email).toBe(user.email)
  })

  it('changes the email only with the account\'s password: an access token alone cannot lock its owner out', async () => {
    const user = await signUp(collector)
    const missing = await failure(collector.client.patch('/v1/settings/user', { email: 'taken-over@example.com' }, as(user)))
    expect([missing.status, missing.code]).toEqual([400, 'VALIDATION_ERROR'])
    expect(missing.details?.issues).toEqual([{ path: 'body.currentPassword', message: expect.stringContaining('changing the email needs currentPassword') }])
    const wrong = await failure(collector.client.patch('/v1/settings/user', { email: 'taken-over@example.com', currentPassword: 'not the password' }, as(user)))
    expect([wrong.status, wrong.code]).toEqual([403, 'FORBIDDEN'])
    expect((await collector.client.get<UserSettings>('/v1/settings/user', as(user))).email).toBe(user.email)
    // the name needs no password
    expect((await collector.client.patch<UserSettings>('/v1/settings/user', { name: 'Still me' }, as(user))).name).toBe('Still me')
    // guessing is limited as logins are: past 10 wrong tries in the window, even the right one waits
    for (let i = 0; i < 9; i++) await failure(collector.client.patch('/v1/settings/user', { email: 'x@example.com', currentPassword: `guess ${i}` }, as(user)))
    const limited = await failure(collector.client.patch('/v1/settings/user', { email: 'moved@example.com', currentPassword: PASSWORD }, as(user)))
    expect([limited.status, limited.code]).toEqual([429, 'RATE_LIMITED'])
    expect((await collector.client.get<UserSettings>('/v1/settings/user', as(user))).email).toBe(user.email)
  })

  it('changes the email with the right password, and a right password gives its try back', async () => {
    const user = await signUp(collector)
    for (let i = 0; i < 12; i++) {
      const moved = await collector.client.patch<UserSettings>('/v1/settings/user', { email: `moved-${i}-${user.email}`, currentPassword: PASSWORD }, as(user))
      expect(moved.email).toBe(`moved-${i}-${user.email}`)
    }
  })

  it('needs a user token', async () => {
    const err = await failure(collector.client.get('/v1/settings/user'))
    expect([err.status, err.code]).toEqual([401, 'UNAUTHORIZED'])
  })
})

describe('project settings', () => {
  it('starts from the defaults, as of the project\'s creation', async () => {
    const settings = await projectSettings()
    expect(settings).toMatchObject({
      projectId,
      preferredModel: null,
      safetyThreshold: 80,
      rateLimit: 600,
      systemPrompt: null,
      blockOnRisk: false,
      metadata: {},
    })
    const project = await collector.client.get<{ createdAt: string }>(`/v1/projects/${projectId}`, as(owner))
    expect(settings.updatedAt).toBe(project.createdAt)
  })

  it('PATCH changes only the fields given and returns the whole document', async () => {
    const patched = await collector.client.patch<ProjectSettingsResponse>(
      `/v1/projects/${projectId}/settings`,
      { safetyThreshold: 65, blockOnRisk: true, preferredModel: 'gpt-4o-mini', metadata: { team: 'support' } },
      as(owner),
    )
    expect(patched).toMatchObject({ safetyThreshold: 65, blockOnRisk: true, preferredModel: 'gpt-4o-mini', rateLimit: 600, metadata: { team: 'support' } })
    const again = await collector.client.patch<ProjectSettingsResponse>(`/v1/projects/${projectId}/settings`, { systemPrompt: 'Be brief.' }, as(owner))
    expect(again).toMatchObject({ safetyThreshold: 65, blockOnRisk: true, systemPrompt: 'Be brief.' })
    expect(await projectSettings()).toEqual(again)
  })

  it.each([
    ['threshold above 100', { safetyThreshold: 101 }],
    ['threshold below 0', { safetyThreshold: -1 }],
    ['fractional threshold', { safetyThreshold: 50.5 }],
    ['rate limit 0', { rateLimit: 0 }],
    ['rate limit too high', { rateLimit: 1_000_001 }],
    ['wrong type', { blockOnRisk: 'yes' }],
    ['oversize system prompt', { systemPrompt: 'x'.repeat(32_769) }],
    ['oversize metadata', { metadata: { blob: 'x'.repeat(17_000) } }],
    ['metadata not an object', { metadata: [1, 2] }],
    ['unknown field', { colour: 'blue' }],
    ['empty patch', {}],
    ['null body', null],
  ])('400 on %s; nothing changes', async (_case, body) => {
    const before = await projectSettings()
    const err = await failure(collector.client.patch(`/v1/projects/${projectId}/settings`, body, as(owner)))
    expect([err.status, err.code]).toEqual([400, 'VALIDATION_ERROR'])
    expect(await projectSettings()).toEqual(before)
  })

  it('reads a stored document leniently: fields added later get defaults, invalid ones fall back', async () => {
    const { project } = await setupProject(collector, owner)
    await collector.sql`insert into project_settings (project_id, settings) values (${project.id}, ${collector.sql.json({ safetyThreshold: 'bad', rateLimit: 42, retired: true })})`
    const settings = await collector.client.get<ProjectSettingsResponse>(`/v1/projects/${project.id}/settings`, as(owner))
    expect(settings).toMatchObject({ safetyThreshold: 80, rateLimit: 42, blockOnRisk: false })
    expect(settings).not.toHaveProperty('retired')
  })
})
