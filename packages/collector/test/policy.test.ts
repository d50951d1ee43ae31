import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_POLICY, policySchema, type Policy } from '@llmguard/shared'
import { startTestCollector, type TestCollector } from './helpers/collector.js'
import { failure, setupProject, type TestUser } from './helpers/accounts.js'

let collector: TestCollector
let owner: TestUser
let projectId: string
let key: string

beforeAll(async () => {
  collector = await startTestCollector()
  const setup = await setupProject(collector)
  owner = setup.user
  projectId = setup.project.id
  key = setup.key.key
})
afterAll(() => collector?.close())

const fetchPolicy = (headers: Record<string, string> = {}, token = key) => collector.client.send<Policy>('GET', '/v1/llm/policy', { token, headers })
const patch = (body: Record<string, unknown>) => collector.client.patch(`/v1/projects/${projectId}/settings`, body, { token: owner.accessToken })

describe('GET /v1/llm/policy', () => {
  it('is the default policy for default settings, with ETag "<version>"', async () => {
    const res = await fetchPolicy()
    expect(res.status).toBe(200)
    expect(policySchema.parse(res.data)).toEqual({ ...DEFAULT_POLICY, version: res.data.version })
    expect(res.headers.etag).toBe(`"${res.data.version}"`)
    // the route's own caching rule replaces the API's default no-store: one header, not both
    expect(res.headers['cache-control']).toBe('no-cache')
  })

  it('answers 304 with no body on a matching If-None-Match (plain, weak, in a list)', async () => {
    const { data } = await fetchPolicy()
    for (const header of [`"${data.version}"`, `W/"${data.version}"`, `"999999", "${data.version}"`, '*']) {
      const res = await fetchPolicy({ 'if-none-match': header })
      expect(res.status).toBe(304)
      expect(res.data).toBeUndefined()
      expect(res.headers.etag).toBe(`"${data.version}"`)
      expect(res.headers['cache-control']).toBe('no-cache')
    }
    expect((await fetchPolicy({ 'if-none-match': `"${data.version + 1}"` })).status).toBe(200)
  })

  it('bumps the version when a setting the policy shows changes, and only then', async () => {
    const v1 = (await fetchPolicy()).data.version
    await patch({ metadata: { note: 'not in the policy' }, preferredModel: 'gpt-4o' })
    expect((await fetchPolicy({ 'if-none-match': `"${v1}"` })).status).toBe(304)

    await patch({ blockOnRisk: true, safetyThreshold: 60, systemPrompt: 'Stay on topic.', rateLimit: 120 })
    const changed = await fetchPolicy({ 'if-none-match': `"${v1}"` })
    expect(changed.status).toBe(200)
    expect(changed.data).toMatchObject({ version: v1 + 1, blockOnRisk: true, safetyThreshold: 60, systemPrompt: 'Stay on topic.', rateLimit: 120 })
    expect(changed.headers.etag).toBe(`"${v1 + 1}"`)

    // setting the same values again is no change
    await patch({ blockOnRisk: true })
    expect((await fetchPolicy()).data.version).toBe(v1 + 1)
  })

  it('a blank system prompt in the settings is no system prompt: the policy carries null, not an empty one to put in place', async () => {
    const own = await setupProject(collector)
    const get = () => collector.client.send<Policy>('GET', '/v1/llm/policy', { token: own.key.key })
    const set = (systemPrompt: string | null) => collector.client.patch(`/v1/projects/${own.project.id}/settings`, { systemPrompt }, { token: own.user.accessToken })
    const v0 = (await get()).data.version
    for (const blank of ['', '  \n ']) {
      await set(blank)
      expect((await get()).data).toMatchObject({ version: v0, systemPrompt: null })
    }
    await set('Be kind.')
    expect((await get()).data).toMatchObject({ version: v0 + 1, systemPrompt: 'Be kind.' })
    await set('')
    expect((await get()).data).toMatchObject({ version: v0 + 2, systemPrompt: null })
  })

  it("a key of another project reads its own project's policy, never this one", async () => {
    const other = await setupProject(collector)
    const theirs = await fetchPolicy({}, other.key.key)
    expect(theirs.data).toMatchObject({ blockOnRisk: false, systemPrompt: null })
    const ours = await fetchPolicy()
    expect(ours.data.systemPrompt).toBe('Stay on topic.')
  })

  it('needs an API key: none → 401, a user JWT → 401, a revoked key → 403', async () => {
    expect((await failure(collector.client.get('/v1/llm/policy'))).status).toBe(401)
    expect((await failure(collector.client.get('/v1/llm/policy', { token: owner.accessToken }))).status).toBe(401)
    const { key: doomed, project } = await setupProject(collector, owner)
    await collector.client.delete(`/v1/projects/${project.id}/keys/${doomed.id}`, { token: owner.accessToken })
    const err = await failure(fetchPolicy({}, doomed.key))
    expect([err.status, err.code]).toEqual([403, 'INVALID_API_KEY'])
  })
})

describe('policy cache', () => {
  it('serves a change made by another instance within a quarter second, and its own changes at once', async () => {
    const get = () => collector.client.send<Policy>('GET', '/v1/llm/policy', { token: key })
    const before = (await get()).data
    // what another collector instance's settings change leaves in the database
    await collector.sql.begin(async (tx) => {
      await tx`insert into project_settings (project_id, settings) values (${projectId}, ${tx.json({ systemPrompt: 'from elsewhere' })})
        on conflict (project_id) do update set settings = project_settings.settings || excluded.settings`
      await tx`update projects set policy_version = policy_version + 1 where id = ${projectId}`
    })
    await new Promise((r) => setTimeout(r, 300))
    const seen = (await get()).data
    expect(seen.version).toBe(before.version + 1)
    expect(seen.systemPrompt).toBe('from elsewhere')
    await collector.client.patch(`/v1/projects/${projectId}/settings`, { systemPrompt: 'from here' }, { token: owner.accessToken })
    expect((await get()).data).toMatchObject({ version: before.version + 2, systemPrompt: 'from here' })
  })
})
