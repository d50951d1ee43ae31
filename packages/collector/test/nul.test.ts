import { randomUUID } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IngestResult, Project } from '@llmguard/shared'
import { startTestCollector, type TestCollector } from './helpers/collector.js'
import { count, failure, setupProject, type TestUser } from './helpers/accounts.js'

// PostgreSQL's text and jsonb cannot hold a NUL character (U+0000), nor jsonb an unpaired UTF-16
// surrogate: every route that stores or queries a string refuses them with a 400 naming where,
// instead of a 500 from the database. Ingest is the exception: a record is never lost over one
// (the text is made storable).
const SECRET = 'dd-webhook-secret-0123456789abcdef'
let collector: TestCollector
let owner: TestUser
let project: Project
let key: string

beforeAll(async () => {
  collector = await startTestCollector({ env: { DATADOG_WEBHOOK_SECRET: SECRET } })
  const setup = await setupProject(collector)
  ;({ user: owner, project } = setup)
  key = setup.key.key
})
afterAll(() => collector.close())

const as = () => ({ token: owner.accessToken })
const NUL_ISSUE = 'must not contain NUL characters (\\u0000)'

describe('a NUL character in a request', () => {
  it.each([
    ['project name', 'POST', '/v1/projects', { name: 'a\u0000b' }, 'body.name'],
    ['system prompt', 'PATCH', '/settings', { systemPrompt: 'be brief\u0000' }, 'body.systemPrompt'],
    ['sensitive keyword', 'PATCH', '/settings', { sensitiveKeywords: ['ok', 'x\u0000'] }, 'body.sensitiveKeywords.1'],
    ['metadata key', 'PATCH', '/settings', { metadata: { ['k\u0000']: 1 } }, 'body.metadata.k\\u0000'],
    ['user name', 'PATCH', '/v1/settings/user', { name: 'Ann\u0000' }, 'body.name'],
    ['key name', 'POST', '/keys', { name: 'ci\u0000' }, 'body.name'],
  ])('in a %s is a 400 naming it, and changes nothing', async (_what, method, path, body, where) => {
    const url = path.startsWith('/v1') ? path : `/v1/projects/${project.id}${path}`
    const before = await collector.sql`select (select count(*)::int from projects) as p, (select count(*)::int from api_keys) as k,
      (select settings::text from project_settings where project_id = ${project.id}) as s, (select name from users where id = ${owner.id}) as u`
    const err = await failure(collector.client.send(method as 'POST', url, { body, ...as() }))
    expect([err.status, err.code]).toEqual([400, 'VALIDATION_ERROR'])
    expect(err.details).toEqual({ issues: [{ path: where, message: NUL_ISSUE }] })
    const after = await collector.sql`select (select count(*)::int from projects) as p, (select count(*)::int from api_keys) as k,
      (select settings::text from project_settings where project_id = ${project.id}) as s, (select name from users where id = ${owner.id}) as u`
    expect(after).toEqual(before)
  })

  it.each([
    ['system prompt', { systemPrompt: 'be brief \ud800' }, 'body.systemPrompt'],
    ['preferred model', { preferredModel: '\udc00gpt' }, 'body.preferredModel'],
    ['metadata key', { metadata: { ['k\ud800']: 1 } }, 'body.metadata.k\\ud800'],
  ])('an unpaired surrogate in a %s (PostgreSQL jsonb refuses its escape) is a 400 too', async (_what, body, where) => {
    const before = await collector.sql`select settings::text as s from project_settings where project_id = ${project.id}`
    const err = await failure(collector.client.patch(`/v1/projects/${project.id}/settings`, body, as()))
    expect([err.status, err.code]).toEqual([400, 'VALIDATION_ERROR'])
    expect(err.details).toEqual({ issues: [{ path: where, message: 'must be well-formed Unicode (it holds an unpaired surrogate)' }] })
    expect(await collector.sql`select settings::text as s from project_settings where project_id = ${project.id}`).toEqual(before)
  })

  it.each([['search'], ['userId'], ['model']])('in the log search %s is a 400 naming it', async (param) => {
    const err = await failure(collector.client.get(`/v1/projects/${project.id}/logs?${param}=a%00b`, as()))
    expect([err.status, err.code]).toEqual([400, 'VALIDATION_ERROR'])
    expect(err.details).toEqual({ issues: [{ path: `query.${param}`, message: NUL_ISSUE }] })
  })

  it('in a Datadog alert is a 400, and opens no incident', async () => {
    const before = await count(collector, 'incidents')
    const body = { id: randomUUID(), monitorId: '7', title: 'down\u0000', transition: 'Triggered', date: String(Date.now()), tags: `llmguard_project:${project.id}` }
    const err = await failure(collector.client.send('POST', '/v1/webhooks/datadog', { body, headers: { 'x-llmguard-webhook-secret': SECRET } }))
    expect([err.status, err.code]).toEqual([400, 'VALIDATION_ERROR'])
    expect(err.details).toEqual({ issues: [{ path: 'body.title', message: NUL_ISSUE }] })
    expect(await count(collector, 'incidents')).toBe(before)
  })

  it('in an ingested record is made storable, in a single record and in a batch', async () => {
    const one = await collector.client.post<IngestResult>('/v1/llm/requests', { prompt: 'a\u0000b', model: 'gpt-4o', latency: 1, metadata: { ['k\u0000']: 'v\u0000' } }, { token: key })
    const batch = await collector.client.post<{ accepted: number }>('/v1/llm/requests/batch', { records: [{ prompt: 'c\u0000', model: 'gpt-4o', latency: 1, userId: 'u\u0000' }] }, { token: key })
    expect(batch.accepted).toBe(1)
    const [row] = await collector.sql<{ prompt: string; metadata: Record<string, string> }[]>`select prompt, metadata from llm_requests where id = ${one.id}`
    expect(row).toEqual({ prompt: 'a\uFFFDb', metadata: { 'k\uFFFD': 'v\uFFFD' } })
  })

  it('in a batch is repaired whatever the body around it, gzip too; text sent without escapes is stored as sent', async () => {
    const ids = Array.from({ length: 5 }, () => randomUUID())
    const rec = (id: string, prompt: string, extra: object = {}) => ({ id, prompt, model: 'gpt-4o', latency: 1, ...extra })
    const records = [
      rec(ids[0]!, 'plain ünïcödé 日本語 🚀 "quoted" \\ back\\slash\ttab'),
      // an escaped backslash before "u0000": six characters of text, no NUL
      rec(ids[1]!, 'not a NUL: \\u0000'),
      rec(ids[2]!, 'lone \ud800 surrogate', { metadata: { ['k\udfff']: 'v\u0000' } }),
      rec(ids[3]!, 'a \u0000 in the middle', { userId: 'u\u0000' }),
      // a surrogate pair escaped is one well-formed character
      rec(ids[4]!, 'escaped pair \ud83d\ude80'),
    ]
    // the JSON text as an SDK sends it, escapes and all
    const send = async (json: string, gzip: boolean) => {
      const res = await request(`${collector.url}/v1/llm/requests/batch`, {
        method: 'POST',
        body: gzip ? gzipSync(json) : json,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...(gzip ? { 'content-encoding': 'gzip' } : {}) },
      })
      expect(res.statusCode).toBe(200)
      return ((await res.body.json()) as { accepted: number }).accepted
    }
    // no \u escape anywhere: nothing to repair (the collector skips the walk)
    const plain = JSON.stringify({ records: [records[0]] })
    expect(plain).not.toContain('\\u')
    expect(await send(plain, false)).toBe(1)
    expect(await send(JSON.stringify({ records: [records[1]] }), false)).toBe(1)
    // gzip, and the pair escaped by hand (JSON.stringify writes the character itself)
    const escaped = JSON.stringify({ records: records.slice(2) }).replace('escaped pair 🚀', 'escaped pair \\ud83d\\ude80')
    expect(escaped).toContain('\\ud83d\\ude80')
    expect(await send(escaped, true)).toBe(3)
    const rows = await collector.sql<{ id: string; prompt: string; user_id: string | null; metadata: Record<string, string> }[]>`
      select id::text, prompt, user_id, metadata from llm_requests where id = any(${ids}::uuid[])`
    const byId = new Map(rows.map((r) => [r.id, r]))
    expect(byId.get(ids[0]!)!.prompt).toBe(records[0]!.prompt)
    expect(byId.get(ids[1]!)!.prompt).toBe('not a NUL: \\u0000')
    expect(byId.get(ids[2]!)).toMatchObject({ prompt: 'lone \uFFFD surrogate', metadata: { 'k\uFFFD': 'v\uFFFD' } })
    expect(byId.get(ids[3]!)).toMatchObject({ prompt: 'a \uFFFD in the middle', user_id: 'u\uFFFD' })
    expect(byId.get(ids[4]!)!.prompt).toBe('escaped pair 🚀')
  })

  it('is never made by a cut: a long model name (a risk reason quotes it) and a long Datadog body', async () => {
    // the 100th UTF-16 unit of the model is the first half of 🚀: the risk reason's detail cuts it there
    const model = 'gpt-5-' + 'x'.repeat(93) + '🚀'
    const batch = await collector.client.post<{ accepted: number }>('/v1/llm/requests/batch', { records: [{ prompt: 'hi', model, latency: 1 }] }, { token: key })
    expect(batch.accepted).toBe(1)
    const one = await collector.client.post<IngestResult>('/v1/llm/requests', { prompt: 'hi', model, latency: 1 }, { token: key })
    expect(one.riskReasons[0]!.detail.isWellFormed()).toBe(true)
    const stored = await collector.sql<{ detail: string }[]>`
      select risk_reasons -> 0 ->> 'detail' as detail from llm_requests where project_id = ${project.id} and model = ${model}`
    expect(stored).toHaveLength(2)
    for (const row of stored) expect(row.detail.startsWith(`gpt-5-${'x'.repeat(93)}…`)).toBe(true)

    // an alert body of 3,999 units and an emoji: kept to 4,000 units, the emoji left out whole
    const id = randomUUID()
    const body = { id, monitorId: '8', title: 'latency up', transition: 'Triggered', date: String(Date.now()), tags: `llmguard_project:${project.id}`, body: 'b'.repeat(3999) + '🔥 and more' }
    const res = await collector.client.send<{ duplicate: boolean; incident: { id: string } | null }>('POST', '/v1/webhooks/datadog', { body, headers: { 'x-llmguard-webhook-secret': SECRET, 'x-api-key': key } })
    expect(res.status).toBe(200)
    expect(res.data.incident).not.toBeNull()
    const [incident] = await collector.sql<{ body: string }[]>`select metadata ->> 'body' as body from incidents where id = ${res.data.incident!.id}`
    expect(incident!.body).toBe('b'.repeat(3999))
  })
})
