import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BatchResult, IngestResult, LlmRecordInput } from '@llmguard/shared'
import { onRealPostgres, startTestCollector, type TestCollector } from './helpers/collector.js'
import { count, failure, setupProject } from './helpers/accounts.js'

let collector: TestCollector
let keyA: string
let keyB: string
let projectA: string
let projectB: string
let userA: string

const rec = (over: Partial<LlmRecordInput> = {}): LlmRecordInput => ({ prompt: 'hello there', response: 'hi', model: 'gpt-4o-mini', latency: 120, ...over })

beforeAll(async () => {
  collector = await startTestCollector()
  const a = await setupProject(collector)
  const b = await setupProject(collector)
  keyA = a.key.key
  userA = a.user.accessToken
  keyB = b.key.key
  projectA = a.project.id
  projectB = b.project.id
})
afterAll(() => collector.close())

const post = <T>(path: string, body: unknown, key = keyA) => collector.client.post<T>(path, body, { token: key })
const stored = async (projectId: string) => {
  const [row] = await collector.sql<{ n: number }[]>`select count(*)::int as n from llm_requests where project_id = ${projectId}`
  return row!.n
}

describe('POST /v1/llm/requests', () => {
  it('stores one record with its risk, reasons and cost, and a repeat of its id is a 200 with the same result', async () => {
    const id = randomUUID()
    const body = rec({ id, prompt: 'my email is jane@example.com', promptTokens: 1000, completionTokens: 500, cachedTokens: 200 })
    const first = await collector.client.send<IngestResult>('POST', '/v1/llm/requests', { body, token: keyA })
    expect(first.status).toBe(201)
    expect(first.data.id).toBe(id)
    expect(first.data.riskScore).toBeGreaterThanOrEqual(20)
    expect(first.data.riskReasons.map((r) => r.code)).toContain('sensitive_content')
    expect(first.data.riskReasons.reduce((s, r) => s + r.points, 0)).toBe(first.data.riskScore)
    // gpt-4o-mini: $0.15 / 1M input, $0.075 cached, $0.60 output
    expect(first.data.cost).toBeCloseTo((800 * 0.15 + 200 * 0.075 + 500 * 0.6) / 1e6, 12)
    const again = await collector.client.send<IngestResult>('POST', '/v1/llm/requests', { body: { ...body, prompt: 'different' }, token: keyA })
    expect(again.status).toBe(200)
    expect(again.data).toEqual(first.data)
    const [row] = await collector.sql<{ prompt: string; tokens: number }[]>`select prompt, tokens from llm_requests where id = ${id}`
    expect(row).toEqual({ prompt: 'my email is jane@example.com', tokens: 1500 })
  })

  it('generates an id when none is given and applies the defaults', async () => {
    const res = await post<IngestResult>('/v1/llm/requests', { prompt: 'p', model: 'mystery-model', latency: 5 })
    expect(res.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(res.cost).toBeNull() // unknown model: unpriced, never $0
    const [row] = await collector.sql`select response, tokens, status, metadata from llm_requests where id = ${res.id}`
    expect(row).toEqual({ response: '', tokens: 0, status: 'success', metadata: {} })
  })

  it.each([
    ['prompt', { prompt: 42 }],
    ['model', { model: '' }],
    ['latency', { latency: -1 }],
    ['latency', { latency: 1.5 }],
    ['status', { status: 'weird' }],
    ['timestamp', { timestamp: 'yesterday' }],
    // ISO-shaped but outside what PostgreSQL stores (year 0000) or four-digit ISO gives back (UTC year 10000)
    ['timestamp', { timestamp: '0000-01-01T00:00:00Z' }],
    ['timestamp', { timestamp: '9999-12-31T23:59:59-12:00' }],
    ['id', { id: 'not-a-uuid' }],
    ['tokens', { tokens: -3 }],
    ['cachedTokens', { promptTokens: 10, cachedTokens: 20 }],
    ['metadata', { metadata: { big: 'x'.repeat(17 * 1024) } }],
    ['userId', { userId: 'u'.repeat(300) }],
    ['error', { error: { message: 'no type' } }],
  ])('rejects a bad %s with a 400 naming it, storing nothing', async (field, over) => {
    const before = await stored(projectA)
    const err = await failure(post('/v1/llm/requests', { ...rec(), ...over }))
    expect(err.status).toBe(400)
    expect(err.code).toBe('VALIDATION_ERROR')
    expect(JSON.stringify(err.details)).toContain(field)
    expect(await stored(projectA)).toBe(before)
  })

  it('refuses a prompt over 1 MB and a body over 5 MB', async () => {
    const err = await failure(post('/v1/llm/requests', rec({ prompt: 'x'.repeat(1024 * 1024 + 1) })))
    expect(err.code).toBe('VALIDATION_ERROR')
    const huge = await failure(post('/v1/llm/requests/batch', { records: Array.from({ length: 6 }, () => rec({ prompt: 'y'.repeat(1000 * 1000) })) }))
    expect(huge.status).toBe(413)
    expect(huge.code).toBe('PAYLOAD_TOO_LARGE')
  })

  it('needs a valid API key and never takes the project from the body', async () => {
    expect((await failure(collector.client.post('/v1/llm/requests', rec()))).status).toBe(401)
    const bogus = `lg_${randomUUID()}`
    expect((await failure(post('/v1/llm/requests', rec(), bogus))).code).toBe('INVALID_API_KEY')
    const before = await stored(projectB)
    const res = await post<IngestResult>('/v1/llm/requests', { ...rec(), projectId: projectB, project_id: projectB })
    const [row] = await collector.sql`select project_id from llm_requests where id = ${res.id}`
    expect(row!.project_id).toBe(projectA)
    expect(await stored(projectB)).toBe(before)
  })

  it('stores text Postgres cannot hold (NUL, lone surrogates) made storable instead of failing', async () => {
    const res = await post<IngestResult>('/v1/llm/requests', rec({ prompt: 'a\u0000b\ud800c' }))
    const [row] = await collector.sql<{ prompt: string }[]>`select prompt from llm_requests where id = ${res.id}`
    expect(row!.prompt).toBe('a\uFFFDb\uFFFDc')
  })
})

describe('POST /v1/llm/requests/batch', () => {
  it('stores big bodies byte for byte, however their bytes arrive (one buffer up to 1 MiB, pieces past it)', async () => {
    // distinct text per record and offset, multi-byte characters included, so a piece copied to
    // the wrong place or dropped shows in the stored prompts
    const prompt = (i: number, size: number) => `${i}:` + Array.from({ length: size }, (_, k) => ['a', 'é', '€', '🚀'][(i + k) % 4]).join('')
    for (const [records, size] of [[40, 6000], [120, 6000]] as const) {
      const batch = Array.from({ length: records }, (_, i) => rec({ id: randomUUID(), prompt: prompt(i, size) }))
      const body = Buffer.from(JSON.stringify({ records: batch }))
      expect(body.length > 1024 * 1024).toBe(records === 120) // one on each side of the single-buffer limit
      for (const pieceBytes of [body.length, 7_919]) {
        const ids = batch.map(() => randomUUID())
        const sent = Buffer.from(JSON.stringify({ records: batch.map((r, i) => ({ ...r, id: ids[i] })) }))
        async function* pieces() {
          for (let at = 0; at < sent.length; at += pieceBytes) {
            yield sent.subarray(at, at + pieceBytes)
            await new Promise((r) => setImmediate(r))
          }
        }
        const res = await request(`${collector.url}/v1/llm/requests/batch`, {
          method: 'POST',
          headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json', 'content-length': String(sent.length) },
          body: pieceBytes === sent.length ? sent : Readable.from(pieces()),
        })
        expect(res.statusCode).toBe(200)
        expect(((await res.body.json()) as BatchResult).accepted).toBe(records)
        const rows = await collector.sql<{ id: string; prompt: string }[]>`select id, prompt from llm_requests where id = any(${ids}::uuid[])`
        const byId = new Map(rows.map((r) => [r.id, r.prompt]))
        ids.forEach((id, i) => expect(byId.get(id)).toBe(batch[i]!.prompt))
      }
    }
  })

  it('stores exactly the good records of a mixed batch and reports the bad ones by index', async () => {
    const before = await stored(projectA)
    const dup = randomUUID()
    const records = [rec(), { model: 'x', latency: 1 }, rec({ id: dup }), rec({ latency: -5 }), rec({ id: dup, prompt: 'second copy' }), 'not an object']
    const res = await post<BatchResult>('/v1/llm/requests/batch', { records })
    expect(res.accepted).toBe(2)
    expect(res.duplicates).toBe(1)
    expect(res.rejected.map((r) => [r.index, r.code])).toEqual([
      [1, 'VALIDATION_ERROR'],
      [3, 'VALIDATION_ERROR'],
      [5, 'VALIDATION_ERROR'],
    ])
    expect(res.rejected[0]!.message).toContain('prompt')
    expect(await stored(projectA)).toBe(before + 2)
    const [row] = await collector.sql<{ prompt: string }[]>`select prompt from llm_requests where id = ${dup}`
    expect(row!.prompt).toBe('hello there')
  })

  it('rejects a record with an out-of-range timestamp on its own; the rest of the batch is stored', async () => {
    const before = await stored(projectA)
    const records = [rec(), rec({ timestamp: '0000-01-01T00:00:00Z' }), rec({ timestamp: '1970-01-01T00:00:00Z' }), rec({ timestamp: '9999-12-31T23:59:59-12:00' })]
    const res = await post<BatchResult>('/v1/llm/requests/batch', { records })
    expect(res.accepted).toBe(2)
    expect(res.rejected).toEqual([
      { index: 1, code: 'VALIDATION_ERROR', message: 'timestamp: must be between 1970-01-01 and 9999-12-31 (UTC)' },
      { index: 3, code: 'VALIDATION_ERROR', message: 'timestamp: must be between 1970-01-01 and 9999-12-31 (UTC)' },
    ])
    expect(await stored(projectA)).toBe(before + 2)
  })

  it('rejects a timestamp PostgreSQL cannot read (an offset of 16 hours, a 200-digit fraction) on its own, the same on a retry', async () => {
    const records = [rec({ id: randomUUID() }), rec({ timestamp: '2026-01-01T00:00:00+16:00' }), rec({ timestamp: `2026-01-01T00:00:00.${'7'.repeat(200)}Z` }), rec({ id: randomUUID(), timestamp: '2026-01-01T00:00:00.123456789+15:59' })]
    const expected = [
      { index: 1, code: 'VALIDATION_ERROR', message: 'timestamp: must have a UTC offset within ±15:59' },
      { index: 2, code: 'VALIDATION_ERROR', message: 'timestamp: must have at most 9 digits of fractional seconds' },
    ]
    const before = await stored(projectA)
    const first = await post<BatchResult>('/v1/llm/requests/batch', { records })
    expect(first).toEqual({ accepted: 2, duplicates: 0, rejected: expected })
    // a retry goes by the insert path (its ids are stored): the same answer, not a 500
    const again = await post<BatchResult>('/v1/llm/requests/batch', { records })
    expect(again).toEqual({ accepted: 0, duplicates: 2, rejected: expected })
    expect(await stored(projectA)).toBe(before + 2)
    const [row] = await collector.sql<{ t: string }[]>`select "timestamp" = '2026-01-01T00:00:00.123457+15:59'::timestamptz as t from llm_requests where id = ${records[3]!.id!}`
    expect(row).toEqual({ t: true })
  })

  it('rejects metadata nested thousands deep on its own (a few KB that would overflow a serialiser); the rest of the batch is stored', async () => {
    // written by hand: JSON.stringify itself cannot serialise it
    const nested = (depth: number) => `{"a":${'['.repeat(depth)}"bottom"${']'.repeat(depth)}}`
    const withMetadata = (metadata: string) => JSON.stringify(rec()).replace(/}$/, `,"metadata":${metadata}}`)
    const send = async (path: string, body: string) => {
      const res = await request(`${collector.url}${path}`, { method: 'POST', body, headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' } })
      return { status: res.statusCode, json: (await res.body.json()) as any }
    }
    const before = await stored(projectA)
    const single = await send('/v1/llm/requests', withMetadata(nested(6000)))
    expect([single.status, single.json.error.code]).toEqual([400, 'VALIDATION_ERROR'])
    expect(JSON.stringify(single.json.error.details)).toContain('metadata must nest at most 32 levels deep')
    const batch = await send('/v1/llm/requests/batch', `{"records":[${withMetadata('{}')},${withMetadata(nested(6000))},${withMetadata(nested(30))}]}`)
    expect(batch.status).toBe(200)
    const res = batch.json as BatchResult
    expect(res.accepted).toBe(2)
    expect(res.rejected).toEqual([{ index: 1, code: 'VALIDATION_ERROR', message: 'metadata: metadata must nest at most 32 levels deep' }])
    expect(await stored(projectA)).toBe(before + 2)
  })

  it('refuses a top-level metadata key named __proto__ by name (zod would drop it silently); one nested deeper is stored as sent', async () => {
    const withMetadata = (metadata: string) => JSON.stringify(rec()).replace(/}$/, `,"metadata":${metadata}}`)
    const send = async (path: string, body: string) => {
      const res = await request(`${collector.url}${path}`, { method: 'POST', body, headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' } })
      return { status: res.statusCode, json: (await res.body.json()) as any }
    }
    const proto = '{"team":"a","__proto__":{"polluted":true}}'
    const nested = '{"team":"a","deep":{"__proto__":{"kept":true}}}'
    const before = await stored(projectA)
    const single = await send('/v1/llm/requests', withMetadata(proto))
    expect([single.status, single.json.error?.code]).toEqual([400, 'VALIDATION_ERROR'])
    expect(single.json.error.details.issues).toEqual([{ path: 'body.metadata.__proto__', message: 'a metadata key named "__proto__" cannot be stored; rename it' }])
    const batch = await send('/v1/llm/requests/batch', `{"records":[${withMetadata('{"team":"a"}')},${withMetadata(proto)},${withMetadata(nested)}]}`)
    expect(batch.status).toBe(200)
    const res = batch.json as BatchResult
    expect(res.accepted).toBe(2)
    expect(res.rejected).toEqual([{ index: 1, code: 'VALIDATION_ERROR', message: 'metadata.__proto__: a metadata key named "__proto__" cannot be stored; rename it' }])
    expect(await stored(projectA)).toBe(before + 2)
    const rows = await collector.sql<{ metadata: string }[]>`
      select metadata::text as metadata from llm_requests where project_id = ${projectA} and metadata ? 'deep' order by created_at desc limit 1`
    expect(rows.map((r) => JSON.parse(r.metadata))).toEqual([JSON.parse(nested)])
    expect(rows[0]!.metadata).toContain('"__proto__"')
  })

  it('stores each id once when batches race', async () => {
    const ids = Array.from({ length: 60 }, () => randomUUID())
    const before = await stored(projectA)
    const batches = [0, 1, 2, 3].map((k) => ids.slice(k * 10, k * 10 + 30).map((id) => rec({ id, latency: k })))
    const results = await Promise.all(batches.map((records) => post<BatchResult>('/v1/llm/requests/batch', { records })))
    const accepted = results.reduce((s, r) => s + r.accepted, 0)
    const duplicates = results.reduce((s, r) => s + r.duplicates, 0)
    expect(accepted).toBe(60)
    expect(duplicates).toBe(120 - 60)
    expect(await stored(projectA)).toBe(before + 60)
    const [roll] = await collector.sql<{ n: number }[]>`select sum(requests)::int as n from request_rollups where project_id = ${projectA}`
    expect(roll!.n).toBe(await stored(projectA))
  })

  it('takes concurrent batches touching the same rollup rows in any order without failing (no deadlock)', async () => {
    const hours = Array.from({ length: 12 }, (_, h) => new Date(Date.UTC(2026, 10, 20, h)).toISOString())
    const models = ['gpt-4o', 'gpt-4o-mini', 'o3-mini']
    // every batch touches every (hour, model) and latency bucket, each in its own shuffled order
    const batch = (seed: number) =>
      Array.from({ length: 240 }, (_, i) => {
        const k = (i * 7919 + seed * 104_729) % 240
        return rec({ timestamp: hours[k % 12]!, model: models[k % 3]!, latency: 10 + ((k * 37) % 3000) })
      })
    const results = await Promise.all(Array.from({ length: 8 }, (_, s) => post<BatchResult>('/v1/llm/requests/batch', { records: batch(s) })))
    expect(results.map((r) => r.accepted)).toEqual(Array(8).fill(240))
    const [roll] = await collector.sql<{ n: number }[]>`
      select sum(requests)::int as n from request_rollups where project_id = ${projectA} and hour >= ${hours[0]!} and hour <= ${hours[11]!}`
    expect(roll!.n).toBe(8 * 240)
  })

  it('accepts a gzip body, and answers a bad envelope with a 400', async () => {
    const body = gzipSync(JSON.stringify({ records: [rec(), rec()] }))
    const res = await request(`${collector.url}/v1/llm/requests/batch`, {
      method: 'POST',
      body,
      headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json', 'content-encoding': 'gzip' },
    })
    expect(res.statusCode).toBe(200)
    expect(((await res.body.json()) as BatchResult).accepted).toBe(2)
    for (const bad of [{}, { records: [] }, { records: 'x' }, { records: Array.from({ length: 1001 }, () => rec()) }]) {
      const err = await failure(post('/v1/llm/requests/batch', bad))
      expect(err.status).toBe(400)
      expect(err.code).toBe('VALIDATION_ERROR')
    }
  })

  it('keeps projects apart: the same client id in two projects is two records', async () => {
    const id = randomUUID()
    await post('/v1/llm/requests/batch', { records: [rec({ id })] }, keyA)
    const res = await post<BatchResult>('/v1/llm/requests/batch', { records: [rec({ id })] }, keyB)
    expect(res.accepted).toBe(1)
    expect(await count(collector, `llm_requests where id = '${id}'`)).toBe(2)
  })

  it('stores text with tabs, newlines, backslashes and JSON metacharacters exactly as sent', async () => {
    const awkward = 'tab\there\nnew line\r\nCRLF \\N not null \\. \\\\ "quoted" é 漢字 🚀 \\t literal'
    const records = [
      rec({ prompt: awkward, response: `${awkward}\n`, userId: 'u\tser\\1', endpoint: 'chat\ncompletions', requestedModel: 'gpt\\4', stream: true, timeToFirstToken: 12 }),
      rec({ metadata: { note: awkward, nested: { list: ['a\tb', 'c\\d', null, 3.5, true] } }, status: 'error', error: { type: 'api\terror', message: awkward, status: 502 } }),
      rec({ response: '', stream: false, timeToFirstToken: 0, promptTokens: 3, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0 }),
      // far more bytes than the room the COPY encoder starts with (~1 KB a row)
      rec({ prompt: `${'漢字🚀\t'.repeat(4000)}${awkward}`, response: 'é'.repeat(30_000) }),
    ]
    const ids = records.map(() => randomUUID())
    const res = await post<BatchResult>('/v1/llm/requests/batch', { records: records.map((r, i) => ({ ...r, id: ids[i] })) })
    expect(res).toEqual({ accepted: 4, duplicates: 0, rejected: [] })
    const rows = await collector.sql<Record<string, unknown>[]>`
      select id, prompt, response, user_id, endpoint, requested_model, metadata, status, error, stream,
        time_to_first_token, tokens, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost
      from llm_requests where id = any(${ids}::uuid[])`
    const byId = new Map(rows.map((r) => [r.id, r]))
    expect(byId.get(ids[0])).toMatchObject({ prompt: awkward, response: `${awkward}\n`, user_id: 'u\tser\\1', endpoint: 'chat\ncompletions', requested_model: 'gpt\\4', metadata: {}, stream: true, time_to_first_token: 12, error: null })
    expect(byId.get(ids[1])).toMatchObject({ metadata: records[1]!.metadata, status: 'error', error: records[1]!.error, time_to_first_token: null })
    expect(byId.get(ids[2])).toMatchObject({ response: '', stream: false, time_to_first_token: 0, tokens: 3, prompt_tokens: 3, completion_tokens: 0, cached_tokens: 0, reasoning_tokens: 0 })
    expect(byId.get(ids[3])).toMatchObject({ prompt: records[3]!.prompt, response: records[3]!.response })
    // what the API serves back is what was sent
    const one = await collector.client.get<{ prompt: string; metadata: unknown }>(`/v1/projects/${projectA}/logs/${ids[1]}`, { token: userA })
    expect(one.metadata).toEqual(records[1]!.metadata)
  })

  it('stores only the new records of a batch that repeats stored ids, and counts them once in the rollups', async () => {
    const hour = new Date(Date.UTC(2026, 9, 3, 7)).toISOString()
    const storedIds = Array.from({ length: 5 }, () => randomUUID())
    const freshIds = Array.from({ length: 7 }, () => randomUUID())
    const first = await post<BatchResult>('/v1/llm/requests/batch', { records: storedIds.map((id) => rec({ id, timestamp: hour, model: 'rollup-probe' })) })
    expect(first.accepted).toBe(5)
    const mixed = [...freshIds.slice(0, 3), ...storedIds, ...freshIds.slice(3)].map((id) => rec({ id, timestamp: hour, model: 'rollup-probe', latency: 40 }))
    const again = await post<BatchResult>('/v1/llm/requests/batch', { records: mixed })
    expect(again).toEqual({ accepted: 7, duplicates: 5, rejected: [] })
    const [roll] = await collector.sql<{ n: number }[]>`
      select requests as n from request_rollups where project_id = ${projectA} and hour = ${hour} and model = 'rollup-probe'`
    expect(roll!.n).toBe(12)
    const [rows] = await collector.sql<{ n: number }[]>`
      select count(*)::int as n from llm_requests where project_id = ${projectA} and id = any(${[...storedIds, ...freshIds]}::uuid[])`
    expect(rows!.n).toBe(12)
    // the refused fast path (COPY on PostgreSQL) left no connection behind in an aborted transaction
    if (!onRealPostgres()) return
    const stuck = await collector.sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity where state = 'idle in transaction (aborted)'`
    expect(stuck[0]!.n).toBe(0)
  })

  it('takes an id in upper case as the same id in lower case: stored once, new records reported new, repeats as duplicates', async () => {
    const seen: string[] = []
    collector.app.ingest.afterStore.push((records) => {
      seen.push(...records.map((r) => r.id))
    })
    try {
      const id = randomUUID()
      const single = await collector.client.send<IngestResult>('POST', '/v1/llm/requests', { body: rec({ id: id.toUpperCase() }), token: keyA })
      expect(single.status).toBe(201)
      expect(single.data.id).toBe(id)
      expect(seen).toEqual([id])
      const other = randomUUID()
      const res = await post<BatchResult>('/v1/llm/requests/batch', { records: [rec({ id }), rec({ id: other.toUpperCase() }), rec({ id: other })] })
      expect(res).toEqual({ accepted: 1, duplicates: 2, rejected: [] })
      expect(seen).toEqual([id, other])
      const rows = await collector.sql<{ id: string }[]>`select id from llm_requests where project_id = ${projectA} and id = any(${[id, other]}::uuid[]) order by id`
      expect(rows.map((r) => r.id)).toEqual([id, other].sort())
    } finally {
      collector.app.ingest.afterStore.length = 0
    }
  })

  it('runs after-store hooks with the stored records only, and a failing hook loses nothing', async () => {
    const seen: string[] = []
    collector.app.ingest.afterStore.push(
      (records) => {
        seen.push(...records.map((r) => r.id))
      },
      () => {
        throw new Error('hook broke')
      },
    )
    try {
      const dup = randomUUID()
      await post('/v1/llm/requests', rec({ id: dup }))
      seen.length = 0
      const fresh = randomUUID()
      const res = await post<BatchResult>('/v1/llm/requests/batch', { records: [rec({ id: dup }), rec({ id: fresh })] })
      expect(res.accepted).toBe(1)
      expect(seen).toEqual([fresh])
    } finally {
      collector.app.ingest.afterStore.length = 0
    }
  })
})

describe('project settings in scoring and pricing', () => {
  it("applies the project's sensitive keywords and price overrides to the next record", async () => {
    const setup = await setupProject(collector)
    const token = setup.key.key
    const before = await post<IngestResult>('/v1/llm/requests', rec({ prompt: 'the zanzibar plan', model: 'house-model', tokens: 2000 }), token)
    expect(before.riskReasons.map((r) => r.code)).not.toContain('sensitive_content')
    expect(before.cost).toBeNull()
    await collector.client.patch(
      `/v1/projects/${setup.project.id}/settings`,
      { sensitiveKeywords: ['zanzibar'], priceOverrides: { 'house-model': { input: 1, output: 2, flatPer1K: 0.5 } } },
      { token: setup.user.accessToken },
    )
    const after = await post<IngestResult>('/v1/llm/requests', rec({ prompt: 'the zanzibar plan', model: 'house-model', tokens: 2000 }), token)
    expect(after.riskReasons.map((r) => r.code)).toContain('sensitive_content')
    expect(after.cost).toBeCloseTo(1.0, 10) // 2000 tokens at $0.5 / 1K
    const bad = await failure(
      collector.client.patch(`/v1/projects/${setup.project.id}/settings`, { priceOverrides: { x: { input: -1 } } }, { token: setup.user.accessToken }),
    )
    expect(bad.status).toBe(400)
  })
})
