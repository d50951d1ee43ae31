import { randomUUID } from 'node:crypto'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ScoredRecord } from '../src/ingest/pipeline.js'
import { COPY_STATEMENT, copyRecords, insertRecords } from '../src/ingest/store.js'
import { copyBinaryData } from '../src/ingest/copy-binary.js'
import { onRealPostgres, startTestCollector, type TestCollector } from './helpers/collector.js'
import { createProject, signUp } from './helpers/accounts.js'

/** Every field of a record, set and unset, in the shapes the binary writer treats apart. */
function record(over: Partial<ScoredRecord> = {}): ScoredRecord {
  return {
    id: randomUUID(),
    prompt: 'hello',
    response: 'hi',
    model: 'gpt-4o-mini',
    latency: 120,
    tokens: 30,
    status: 'success',
    timestamp: '2026-12-01T10:00:00.000Z',
    riskScore: 0,
    riskReasons: [],
    cost: null,
    policyViolation: null,
    ...over,
  } as ScoredRecord
}

const long = (unit: string, n: number) => unit.repeat(n)

const records = (): ScoredRecord[] => [
  record(),
  record({
    prompt: 'tab\there, newline\nthere, carriage\rreturn, back\\slash, quote " and NUL-free ünïcödé 日本語 🚀',
    response: long('a long ascii response ', 2000),
    model: 'modèle-à-accents', // short and not ASCII
    requestedModel: 'gpt-4o',
    endpoint: 'chat.completions',
    timeToFirstToken: 0,
    tokens: 2_000_000_000,
    promptTokens: 1_999_999_000,
    completionTokens: 1000,
    cachedTokens: 0,
    reasoningTokens: 500,
    status: 'error',
    error: { type: 'server_error', message: 'a "quoted" \\ back\\slash\nand ünïcödé', status: 500 },
    stream: true,
    userId: 'user-42 ✓',
    metadata: { env: 'prod', nested: { list: [1, 2.5, -3e-7, true, null, 'x\ty'] }, 'ключ': 'значение' },
    riskScore: 100,
    riskReasons: [{ code: 'error', points: 25, detail: 'the call failed' }],
    cost: 0.000123456789,
    policyViolation: { kind: 'model', detail: 'gpt-4 is switched to gpt-4o-mini' },
  }),
  record({ stream: false, cost: 0, prompt: '', response: '', userId: 'u', metadata: {} }),
  // a prompt far past the first buffer (the writer grows it), of three-byte characters
  record({ prompt: long('€', 200_000), cost: 12345.678 }),
]

/** Timestamps with fractions PostgreSQL rounds (half to even), offsets, and the schema's range ends. */
const TIMESTAMPS = [
  '1970-01-01T00:00:00Z',
  '1999-12-31T23:59:59.999999Z', // before PostgreSQL's epoch: a negative count
  '2000-01-01T00:00:00Z',
  '2026-12-07T01:02:03.5Z',
  '2026-12-07T01:02:03.123456Z',
  '2026-12-07T01:02:03.1234565Z',
  '2026-12-07T01:02:03.0000005Z',
  '2026-12-07T01:02:03.0000015Z',
  '2026-12-07T01:02:03.0000025Z',
  '2026-12-07T01:02:03.9999995Z', // rounds into the next second
  '2026-12-07T01:02:03.99999999999999999999Z',
  '2026-12-07T01:02:03.000000000001+05:30',
  '2026-02-28T23:30:00-14:00',
  '2024-02-29T12:00:00+14:00',
  '2255-06-05T23:47:34.740991Z', // counted from 1970, microseconds pass 2^53 here
  '2255-06-05T23:47:34.740992Z',
  '2255-06-05T23:47:34.740993Z',
  '2260-01-01T00:00:00.000003Z',
  '2285-06-04T23:47:34.740991Z', // counted from 2000 (PostgreSQL's count), they pass it here
  '2285-06-04T23:47:34.740992Z',
  '2285-06-04T23:47:34.740993Z',
  '2300-01-01T00:00:00.000001Z',
  '9999-12-31T23:59:59.999999Z',
  '9999-12-31T23:59:59.9999995Z', // the year 10000 once rounded: the validators refuse it, PostgreSQL stores it
  '9999-12-31T23:59:59.999999-10:00',
]

describe('the binary COPY encoding', () => {
  it('starts with the signature and ends with the trailer', () => {
    const data = copyBinaryData(randomUUID(), [record()])
    expect(data.subarray(0, 11).toString('latin1')).toBe('PGCOPY\n\xff\r\n\0')
    expect(data.readInt32BE(11)).toBe(0)
    expect(data.readInt32BE(15)).toBe(0)
    expect(data.readInt16BE(19)).toBe(24)
    expect(data.readInt16BE(data.length - 2)).toBe(-1)
  })

  it('hands out a buffer of its own for each batch (the one encoded in is reused)', () => {
    const project = randomUUID()
    const first = [record({ prompt: 'first batch' }), record()]
    const data = copyBinaryData(project, first)
    const copy = Buffer.from(data)
    copyBinaryData(project, [record({ prompt: 'a second batch, longer than the first' }), record()])
    expect(data.equals(copy)).toBe(true)
    expect(copyBinaryData(project, first).equals(copy)).toBe(true)
  })

  it('refuses an id that is not a UUID rather than writing other bytes', () => {
    expect(() => copyBinaryData(randomUUID(), [record({ id: 'not-a-uuid' })])).toThrow(/not a UUID/)
    expect(() => copyBinaryData(randomUUID(), [record({ id: randomUUID().slice(0, 35) })])).toThrow(/not a UUID/)
    expect(() => copyBinaryData(randomUUID(), [record({ id: 'g' + randomUUID().slice(1) })])).toThrow(/not a UUID/)
    expect(() => copyBinaryData(randomUUID(), [record({ timestamp: '2026-12-07 01:02:03Z' })])).toThrow(/not an ISO date-time/)
    expect(() => copyBinaryData(randomUUID(), [record({ id: randomUUID().replace('-', '0').slice(0, 35) + '-' })])).toThrow(/not a UUID/)
  })
})

describe.runIf(onRealPostgres())('binary COPY against PostgreSQL', () => {
  let collector: TestCollector
  let viaCopy: string
  let viaInsert: string

  beforeAll(async () => {
    collector = await startTestCollector()
    const user = await signUp(collector)
    viaCopy = (await createProject(collector, user, 'copy')).id
    viaInsert = (await createProject(collector, user, 'insert')).id
  })
  afterAll(() => collector.close())

  /**
   * The pid of a backend whose statement matches `pattern` (LIKE), once one runs it: of the
   * application `app` only, if given, and waiting for a lock, with `lock`.
   */
  const backendRunning = async (pattern: string, o: { app?: string; lock?: boolean } = {}): Promise<number> => {
    for (let i = 0; i < 400; i++) {
      const [row] = await collector.sql<{ pid: number }[]>`
        select pid from pg_stat_activity where query like ${pattern}
          and (${o.app ?? null}::text is null or application_name = ${o.app ?? null})
          and (not ${o.lock ?? false} or wait_event_type = 'Lock')`
      if (row) return row.pid
      await sleep(5)
    }
    throw new Error(`no backend ran ${pattern}${o.lock ? ' waiting for a lock' : ''}`)
  }
  const lockWaiter = (pattern: string) => backendRunning(pattern, { lock: true })

  /** A pool of its own (one connection unless `max` says otherwise) to the test database. */
  const directPool = (options: postgres.Options<{}> = {}) => postgres(collector.databaseUrl!, { max: 1, onnotice: () => undefined, ...options })

  /** A one-connection pool to the test database through `proxy` (listening on loopback). */
  const poolThrough = (proxy: Server, options: postgres.Options<{}> = {}) => {
    const target = new URL(collector.databaseUrl!)
    return postgres({
      host: '127.0.0.1',
      port: (proxy.address() as AddressInfo).port,
      user: decodeURIComponent(target.username),
      database: target.pathname.slice(1),
      max: 1,
      onnotice: () => undefined,
      ...options,
    })
  }

  /** The stored rows of a project as text, by id, every column but the project and the arrival. */
  const rows = async (projectId: string) => {
    const found = await collector.sql<Record<string, string>[]>`
      select id::text, prompt, response, model, requested_model, endpoint, latency::text,
        time_to_first_token::text, tokens::text, prompt_tokens::text, completion_tokens::text,
        cached_tokens::text, reasoning_tokens::text, status, error::text, stream::text, user_id,
        metadata::text, risk_score::text, risk_reasons::text, cost::text, policy_violation::text,
        (extract(epoch from "timestamp") * 1000000)::numeric::text as micros
      from llm_requests where project_id = ${projectId} order by id`
    return found
  }

  it('stores every field exactly as the parameterised INSERT does', async () => {
    const batch = records()
    await copyRecords(collector.sql, viaCopy, batch)
    const inserted = await insertRecords(collector.sql, viaInsert, batch)
    expect(inserted.size).toBe(batch.length)
    const copied = await rows(viaCopy)
    expect(copied).toHaveLength(batch.length)
    expect(copied).toEqual(await rows(viaInsert))
    // and what was stored is what was sent
    const full = copied.find((r) => r.id === batch[1]!.id)!
    expect(full.prompt).toBe(batch[1]!.prompt)
    expect(full.model).toBe('modèle-à-accents')
    expect(full.tokens).toBe('2000000000')
    expect(JSON.parse(full.metadata!)).toEqual(batch[1]!.metadata)
    expect(JSON.parse(full.error!)).toEqual(batch[1]!.error)
    expect(Number(full.cost)).toBe(0.000123456789)
    expect(copied.find((r) => r.id === batch[3]!.id)!.prompt).toHaveLength(200_000)
  })

  it('stores timestamps to the microsecond as PostgreSQL parses their text', async () => {
    const batch = TIMESTAMPS.map((timestamp) => record({ timestamp }))
    await copyRecords(collector.sql, viaCopy, batch)
    const [counts] = await collector.sql<{ same: number; n: number }[]>`
      select count(*) filter (where r."timestamp" = t.ts::timestamptz)::int as same, count(*)::int as n
      from llm_requests r
      join unnest(${batch.map((r) => r.id)}::uuid[], ${TIMESTAMPS}::text[]) as t(id, ts) on t.id = r.id
      where r.project_id = ${viaCopy}`
    expect(counts).toEqual({ same: TIMESTAMPS.length, n: TIMESTAMPS.length })
  })

  it('stores 3,000 random timestamps of the accepted form to the microsecond as PostgreSQL parses them', async () => {
    let seed = 11
    const rnd = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
      return seed % n
    }
    const pad = (n: number, width: number) => String(n).padStart(width, '0')
    const stamps = Array.from({ length: 3000 }, () => {
      const digits = rnd(10)
      const fraction = digits ? '.' + Array.from({ length: digits }, () => rnd(10)).join('') : ''
      const zone = rnd(3) === 0 ? 'Z' : `${rnd(2) ? '+' : '-'}${pad(rnd(16), 2)}:${pad(rnd(60), 2)}`
      // half of them around 2255–2285, where microsecond counts pass 2^53
      const year = rnd(2) ? 1970 + rnd(8030) : 2250 + rnd(40)
      return `${year}-${pad(1 + rnd(12), 2)}-${pad(1 + rnd(28), 2)}T${pad(rnd(24), 2)}:${pad(rnd(60), 2)}:${pad(rnd(60), 2)}${fraction}${zone}`
    })
    const batch = stamps.map((timestamp) => record({ timestamp }))
    await copyRecords(collector.sql, viaCopy, batch)
    const wrong = await collector.sql<{ ts: string; stored: string }[]>`
      select t.ts, r."timestamp"::text as stored
      from llm_requests r
      join unnest(${batch.map((r) => r.id)}::uuid[], ${stamps}::text[]) as t(id, ts) on t.id = r.id
      where r.project_id = ${viaCopy} and r."timestamp" <> t.ts::timestamptz`
    expect(wrong).toEqual([])
    const [found] = await collector.sql<{ n: number }[]>`select count(*)::int as n from llm_requests where id = any(${batch.map((r) => r.id)}::uuid[])`
    expect(found).toEqual({ n: stamps.length })
  })

  it('fails a COPY refused while its data is still being sent, and the pool carries on', async () => {
    const stored = record()
    await copyRecords(collector.sql, viaCopy, [stored])
    // the stored id first, then ~6 MB: PostgreSQL refuses the batch long before the last bytes are sent
    const batch = [stored, ...Array.from({ length: 3000 }, () => record({ prompt: long('x', 2000) }))]
    await expect(copyRecords(collector.sql, viaCopy, batch)).rejects.toMatchObject({ code: '23505' })
    // a missing project: the foreign key refuses it, with its own error
    await expect(copyRecords(collector.sql, randomUUID(), [record()])).rejects.toMatchObject({ code: '23503' })
    const [row] = await collector.sql<{ n: number }[]>`select count(*)::int as n from llm_requests where id = any(${batch.map((r) => r.id)}::uuid[])`
    expect(row).toEqual({ n: 1 })
    // every connection is still usable: more COPYs than the pool has connections, at once
    const after = Array.from({ length: 12 }, () => [record(), record()])
    await Promise.all(after.map((b) => copyRecords(collector.sql, viaCopy, b)))
    const [count] = await collector.sql<{ n: number }[]>`select count(*)::int as n from llm_requests where id = any(${after.flat().map((r) => r.id)}::uuid[])`
    expect(count).toEqual({ n: 24 })
  })

  it('gives the pool back whole when a COPY loses its connection', async () => {
    const sql = collector.sql
    await copyRecords(sql, viaCopy, [record()])
    // the COPY's trigger waits on a rollup row this transaction holds, so its backend can be
    // ended while the COPY is under way
    const hold = await sql.reserve()
    await hold`begin`
    await hold`select 1 from request_rollups where project_id = ${viaCopy} for update`
    const stuck = copyRecords(sql, viaCopy, [record()])
    // it may fail before the terminate query returns: handled from the start, checked below
    stuck.catch(() => undefined)
    const pid = await lockWaiter('copy llm_requests%')
    await sql`select pg_terminate_backend(${pid})`
    await expect(stuck).rejects.toThrow()
    await hold`rollback`
    hold.release()
    // every connection of the pool works again: more COPYs and queries than it has connections
    const batches = Array.from({ length: 12 }, () => [record()])
    const settled = await Promise.race([
      Promise.all([...batches.map((b) => copyRecords(sql, viaCopy, b)), ...batches.map(() => sql`select 1`)]).then(() => 'done'),
      sleep(5_000, 'hung'),
    ])
    expect(settled).toBe('done')
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from llm_requests where id = any(${batches.flat().map((r) => r.id)}::uuid[])`
    expect(row).toEqual({ n: 12 })
  })

  it("never lets a late or repeated release hand out another reservation's connection", async () => {
    const pool = directPool()
    try {
      const a = await pool.reserve()
      a.release()
      // the pool's one connection, reserved again, in the middle of a transaction
      const b = await pool.reserve()
      await b`begin`
      await b`set local application_name = 'inside b'`
      a.release() // a's again: must not put b's connection back in the pool
      const query = pool<{ app: string }[]>`select current_setting('application_name') as app`
      const early = await Promise.race([query.then(() => 'ran inside b'), sleep(300, 'waited')])
      expect(early).toBe('waited')
      await b`rollback`
      b.release()
      const [row] = await query
      expect(row!.app).not.toBe('inside b')
    } finally {
      await pool.end({ timeout: 1 })
    }
  })

  it('sends the data with the statement: a COPY refused before reading it leaves the connection in step', async () => {
    // one connection, so every query below goes out on it, written behind the COPYs without
    // waiting for them: the refused COPYs' data must be skipped by the server, not taken for queries
    const pool = directPool()
    try {
      const data = copyBinaryData(viaCopy, [record()])
      const missingTable = pool.unsafe(`copy llm_requests_missing (id) from stdin (format binary)`).copyFrom(data)
      const missingColumn = pool.unsafe(`copy llm_requests (no_such_column) from stdin (format binary)`).copyFrom(data)
      const stored = record()
      const good = pool.unsafe(COPY_STATEMENT).copyFrom(copyBinaryData(viaCopy, [stored]))
      const after = pool<{ n: number }[]>`select count(*)::int as n from llm_requests where id = ${stored.id}`
      await expect(missingTable).rejects.toMatchObject({ code: '42P01' })
      await expect(missingColumn).rejects.toMatchObject({ code: '42703' })
      await expect(good).resolves.toMatchObject({ count: 1, command: 'COPY' })
      // queued behind the COPY on its connection: it runs after it, and sees its row
      expect(await after).toEqual([{ n: 1 }])
    } finally {
      await pool.end({ timeout: 1 })
    }
  })

  it("gives the next query on a connection whose backend was ended a fresh connection, not the old one's error", async () => {
    const pool = directPool()
    const hold = await collector.sql.reserve()
    try {
      await copyRecords(collector.sql, viaCopy, [record()])
      // the COPY's trigger waits for a rollup row this transaction holds
      await hold`begin`
      await hold`select 1 from request_rollups where project_id = ${viaCopy} for update`
      const stuck = copyRecords(pool, viaCopy, [record()])
      stuck.catch(() => undefined)
      const pid = await lockWaiter('copy llm_requests%')
      await collector.sql`select pg_terminate_backend(${pid})`
      // the COPY fails with the reason the server gave, not a bare CONNECTION_CLOSED
      await expect(stuck).rejects.toMatchObject({ code: '57P01' })
      await hold`rollback`
      // the pool's one connection reconnects for the next query, which must not inherit the 57P01
      const [row] = await pool<{ one: number }[]>`select 1 as one`
      expect(row).toEqual({ one: 1 })
      await copyRecords(pool, viaCopy, [record()])
    } finally {
      hold.release()
      await pool.end({ timeout: 1 })
    }
  })

  it('accepts a string for copyFrom, and refuses anything else before the query is queued', async () => {
    // (a query goes out when it is awaited or executed: each is executed at once, in this order)
    const pool = directPool()
    try {
      await pool`create temporary table copy_text (n int, s text)`
      // a slow query holds the one connection: whatever copyFrom does must not reach it
      const running = pool<{ x: string }[]>`select pg_sleep(0.2), 'a' as x`.execute()
      expect(() => pool.unsafe('copy copy_text from stdin').copyFrom(42 as never)).toThrow(TypeError)
      const text = pool.unsafe('copy copy_text from stdin').copyFrom('1\tone\n2\ttwo ✓\n').then((r) => r)
      const after = pool<{ s: string }[]>`select string_agg(s, ',' order by n) as s from copy_text`.execute()
      expect((await running)[0]!.x).toBe('a')
      await expect(text).resolves.toMatchObject({ count: 2 })
      expect(await after).toEqual([{ s: 'one,two ✓' }])
    } finally {
      await pool.end({ timeout: 1 })
    }
  })

  it('takes a connection of its own: a COPY never waits behind a slow query on a busy one', async () => {
    const pool = directPool({ max: 2 })
    try {
      await Promise.all([pool`select 1`, pool`select 1`])
      // both connections busy, one for long: the COPY takes the first to be free
      const slow = pool`select pg_sleep(2)`.then(() => 'slow')
      const quick = pool`select pg_sleep(0.05)`.execute()
      const copy = copyRecords(pool, viaCopy, [record()]).then(() => 'copy')
      expect(await Promise.race([slow, copy])).toBe('copy')
      await Promise.all([slow, quick])
    } finally {
      await pool.end({ timeout: 1 })
    }
  })

  type Intercept = (data: Buffer, n: number, client: Socket, server: Socket) => boolean

  /**
   * A connection listener forwarding to the test database. It counts the connections (`n` from
   * 1) and keeps their sockets; `intercept` sees what a client sends and returns true to keep it
   * from the server.
   */
  const forwarding = (intercept: Intercept = () => false) => {
    const target = new URL(collector.databaseUrl!)
    const state = { connections: 0, sockets: new Set<Socket>(), held: undefined as Buffer | undefined }
    const listener = (client: Socket) => {
      const n = ++state.connections
      const server = connect(Number(target.port || 5432), target.hostname)
      state.sockets.add(client).add(server)
      server.on('data', (d) => client.write(d))
      server.on('end', () => client.end())
      server.on('error', () => client.destroy())
      client.on('end', () => server.end())
      client.on('error', () => server.destroy())
      client.on('data', (d: Buffer) => intercept(d, n, client, server) || server.write(d))
    }
    return { listener, state }
  }

  const listenOnLoopback = (server: Server, port = 0) => new Promise<void>((r) => server.listen(port, '127.0.0.1', r))

  /** A loopback proxy to the test database (see `forwarding`). */
  const proxyTo = async (intercept?: Intercept) => {
    const { listener, state } = forwarding(intercept)
    const proxy = createServer(listener)
    await listenOnLoopback(proxy)
    return { proxy, state }
  }

  /**
   * A proxy that holds back the first connection's array-types query (postgres.js asks for them
   * before anything else) in `state.held`, so the backend can be ended while the connection's
   * start-up is under way.
   */
  const typesHoldingProxy = async () => {
    const p = await proxyTo((d, n) => n === 1 && d.includes('typcategory') && ((p.state.held = d), true))
    return p
  }

  /** The query's rows, or its error's code, or that it did not settle within `ms`. */
  const outcome = (q: Promise<unknown>, ms = 3_000) =>
    Promise.race([q.then((rows) => rows, (e: { code?: string }) => e.code), sleep(ms, `not settled after ${ms / 1000} s`)])

  /** Runs `fn` and returns the unhandled rejections seen during it and 50 ms after. */
  const unhandledDuring = async (fn: () => Promise<void>): Promise<unknown[]> => {
    const unhandled: unknown[] = []
    const onUnhandled = (e: unknown) => unhandled.push(e)
    process.on('unhandledRejection', onUnhandled)
    try {
      await fn()
      await sleep(50)
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
    return unhandled
  }

  it('gives the next query a fresh connection when a backend ends during the connection start-up', async () => {
    const { proxy, state } = await typesHoldingProxy()
    const pool = poolThrough(proxy, { connection: { application_name: 'copy_binary_startup' } })
    try {
      const unhandled = await unhandledDuring(async () => {
        // sent now (a query goes out when awaited or executed), opening the connection
        const first = pool<{ q: string }[]>`select 'first' as q`.execute()
        while (!state.held) await sleep(5)
        await collector.sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'copy_binary_startup'`
        expect(await first).toEqual([{ q: 'first' }])
        expect(await pool<{ q: string }[]>`select 'second' as q`).toEqual([{ q: 'second' }])
        expect(state.connections).toBe(2)
      })
      expect(unhandled).toEqual([])
    } finally {
      await pool.end({ timeout: 1 })
      proxy.close()
    }
  })

  it('gives a reservation (an ingest COPY) a fresh connection when a backend ends during the start-up opened for it', async () => {
    const { proxy, state } = await typesHoldingProxy()
    const pool = poolThrough(proxy, { connection: { application_name: 'copy_binary_reserve_startup' } })
    try {
      const a = record()
      const unhandled = await unhandledDuring(async () => {
        // the pool's first connection opens for the COPY's reservation
        const copying = copyRecords(pool, viaCopy, [a])
        copying.catch(() => undefined)
        while (!state.held) await sleep(5)
        await collector.sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'copy_binary_reserve_startup'`
        await copying
        expect(state.connections).toBe(2)
        expect(await pool<{ q: string }[]>`select 'next' as q`).toEqual([{ q: 'next' }])
      })
      // the start-up's own query failed with the backend: nothing may be left unhandled (it would
      // end the collector)
      expect(unhandled).toEqual([])
      expect(await collector.sql`select 1 from llm_requests where id = ${a.id}`).toHaveLength(1)
    } finally {
      await pool.end({ timeout: 1 })
      proxy.close()
    }
  })

  it("fails only the running query with its error when the connection drops after it, not the queries behind it", async () => {
    const target = new URL(collector.databaseUrl!)
    let cut = false
    // a proxy that ends the client's connection right after passing on the first ERROR message
    const proxy = createServer((client) => {
      const server = connect(Number(target.port || 5432), target.hostname)
      let buf = Buffer.alloc(0)
      server.on('data', (d: Buffer) => {
        if (cut) return
        buf = Buffer.concat([buf, d])
        let end = 0
        while (buf.length - end >= 5) {
          const len = buf.readUInt32BE(end + 1)
          if (buf.length - end < len + 1) break
          const type = String.fromCharCode(buf[end]!)
          end += len + 1
          if (type === 'E' && buf.subarray(end - len, end).includes('VERROR')) {
            cut = true
            client.end(buf.subarray(0, end))
            server.destroy()
            return
          }
        }
        client.write(buf.subarray(0, end))
        buf = buf.subarray(end)
      })
      server.on('end', () => client.end())
      server.on('error', () => client.destroy())
      client.on('data', (d) => server.write(d))
      client.on('end', () => server.end())
      client.on('error', () => server.destroy())
    })
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
    const pool = poolThrough(proxy)
    try {
      await pool`select 1`
      const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code)
      // three queries on one connection, written one behind the other
      const failing = code(pool`select 1/0 as x`)
      const copy = code(copyRecordsOn(pool))
      const select = code(pool`select 'c' as x`)
      expect(await failing).toBe('22012')
      expect(await copy).toBe('CONNECTION_CLOSED')
      expect(await select).toBe('CONNECTION_CLOSED')
    } finally {
      await pool.end({ timeout: 1 })
      proxy.close()
    }

    /** A COPY by copyFrom straight on the pool, so it is queued behind the failing query. */
    function copyRecordsOn(sql: postgres.Sql) {
      return sql.unsafe(COPY_STATEMENT).copyFrom(copyBinaryData(viaCopy, [record()]))
    }
  })

  it('fails a transaction whose backend is ended mid-statement, and the pool carries on', async () => {
    const pool = directPool()
    const hold = await collector.sql.reserve()
    const uncaught: unknown[] = []
    const onUncaught = (e: unknown) => uncaught.push(e)
    process.on('uncaughtException', onUncaught)
    try {
      await copyRecords(collector.sql, viaCopy, [record()])
      // the insert path's transaction (as the meter's store step runs it), its trigger waiting
      // for a rollup row this transaction holds
      await hold`begin`
      await hold`select 1 from request_rollups where project_id = ${viaCopy} for update`
      const tx = pool.begin((t) => insertRecords(t, viaCopy, [record()]))
      tx.catch(() => undefined)
      const pid = await lockWaiter('%insert into llm_requests%')
      // waits for the pool's one connection, which the transaction holds
      const queued = pool<{ x: string }[]>`select 'queued' as x`.execute()
      await collector.sql`select pg_terminate_backend(${pid})`
      await expect(tx).rejects.toThrow()
      await hold`rollback`
      expect(await queued).toEqual([{ x: 'queued' }])
      expect(await pool<{ x: string }[]>`select 'after' as x`).toEqual([{ x: 'after' }])
      expect(uncaught).toEqual([])
    } finally {
      process.off('uncaughtException', onUncaught)
      hold.release()
      await pool.end({ timeout: 1 })
    }
  })

  it("keeps the pool's connection when a transaction's backend is ended and no query waits", async () => {
    const pool = directPool({ connection: { application_name: 'copy_binary_lone_tx' } })
    try {
      await pool`select 1`
      const tx = pool.begin((t) => t`select pg_sleep(30)`)
      tx.catch(() => undefined)
      await collector.sql`select pg_terminate_backend(${await backendRunning('select pg_sleep%', { app: 'copy_binary_lone_tx' })})`
      await expect(tx).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' })
      // the transaction's rollback, refused on the closed connection, had marked it full: the
      // pool's one connection was lost for good and this waited for ever
      const next = await Promise.race([pool<{ one: number }[]>`select 1 as one`, sleep(5_000, 'no answer after 5 s')])
      expect(next).toEqual([{ one: 1 }])
    } finally {
      await pool.end({ timeout: 1 })
    }
  })

  it("never runs a holder's query in the session of whoever got its connection after its backend was ended", async () => {
    await collector.sql`create table if not exists copy_binary_sessions (x text)`
    const pool = directPool({ connection: { application_name: 'copy_binary_sessions' } })
    try {
      const a = await pool.reserve()
      await a`begin`
      const running = a`select pg_sleep(30)`.execute()
      running.catch(() => undefined)
      // waits for the pool's one connection, which a holds
      const waiting = pool.reserve()
      await collector.sql`select pg_terminate_backend(${await backendRunning('select pg_sleep%', { app: 'copy_binary_sessions' })})`
      await expect(running).rejects.toMatchObject({ code: '57P01' })
      const b = await waiting
      await b`begin`
      const mark = randomUUID()
      await b`insert into copy_binary_sessions values (${mark})`
      // a's cleanup comes late: it ran on b's connection, rolling back b's transaction, and b's
      // commit then "succeeded" with nothing in it
      await expect(a`rollback`).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' })
      a.release()
      await b`commit`
      b.release()
      expect(await collector.sql`select x from copy_binary_sessions where x = ${mark}`).toEqual([{ x: mark }])
    } finally {
      await pool.end({ timeout: 1 })
      await collector.sql`drop table if exists copy_binary_sessions`
    }
  })

  it("settles every query a reservation's holder queued when its connection closes", async () => {
    const pool = directPool({ connection: { application_name: 'copy_binary_queued' } })
    try {
      const conn = await pool.reserve()
      // a parameterised statement is described first, so the connection counts as full and the
      // next query waits in the reservation's own queue
      const first = conn`select pg_sleep(${30})`.execute()
      const second = conn<{ two: number }[]>`select 2 as two`.execute()
      second.catch(() => undefined)
      await collector.sql`select pg_terminate_backend(${await backendRunning('select pg_sleep%', { app: 'copy_binary_queued' })})`
      await expect(first).rejects.toMatchObject({ code: '57P01' })
      const settled = await Promise.race([second.then(() => 'ran', (e: { code?: string }) => e.code), sleep(5_000, 'not settled after 5 s')])
      expect(settled).toBe('CONNECTION_CLOSED')
      conn.release()
      expect(await pool<{ three: number }[]>`select 3 as three`).toEqual([{ three: 3 }])
    } finally {
      await pool.end({ timeout: 1 })
    }
  })

  it('runs what a holder started before its release, also what waited for the busy connection, and a cancelled query holds nothing up', async () => {
    const pool = directPool()
    /** The query's answer, or why it failed, or that it did not settle within 3 s. */
    try {
      const unhandled = await unhandledDuring(async () => {
        // started, then released in the same tick (a query goes to its connection a moment later)
        let r = await pool.reserve()
        const started = r<{ x: number }[]>`select 1 as x`.execute()
        r.release()
        expect(await outcome(started)).toEqual([{ x: 1 }])
        // started and never awaited: it runs, nothing is left unhandled
        r = await pool.reserve()
        void r`select 'forgotten'`.execute()
        r.release()
        // queued behind a parameterised statement (described first: the connection is full)
        r = await pool.reserve()
        const first = r<{ a: number }[]>`select ${1}::int as a, pg_sleep(0.2)`.execute()
        const queued = r<{ b: number }[]>`select 2 as b`.execute()
        await sleep(20)
        r.release()
        expect(await outcome(first)).toMatchObject([{ a: 1 }])
        expect(await outcome(queued)).toEqual([{ b: 2 }])
        // cancelled before it went out: the holder's next query still runs
        r = await pool.reserve()
        const cancelled = r`select 3 as c`
        void cancelled.execute()
        void cancelled.cancel()
        expect(await outcome(cancelled)).toBe('57014')
        expect(await outcome(r<{ d: number }[]>`select 4 as d`)).toEqual([{ d: 4 }])
        r.release()
        expect(await outcome(pool<{ e: number }[]>`select 5 as e`)).toEqual([{ e: 5 }])
      })
      expect(unhandled).toEqual([])
    } finally {
      await pool.end({ timeout: 1 })
    }
  })

  it('hands a released connection back after what its holder started, and refuses what comes after', async () => {
    const pool = directPool()
    try {
      const unhandled = await unhandledDuring(async () => {
        // released while its statement waits for its description: a pool query was written into
        // the half-done exchange, and the pool never answered again
        let r = await pool.reserve()
        const describing = r<{ who: string }[]>`select ${'holder'}::text as who`.execute()
        await null
        r.release()
        const pooled = pool<{ n: number }[]>`select ${42}::int as n`.execute()
        expect(await outcome(describing)).toEqual([{ who: 'holder' }])
        expect(await outcome(pooled)).toEqual([{ n: 42 }])
        // started just before the release while a parameterised pool query waited: it ended in
        // the released reservation's queue, never run
        r = await pool.reserve()
        const waiting = pool<{ who: string }[]>`select ${'pool'}::text as who`.execute()
        await sleep(20)
        const started = r<{ who: string }[]>`select 'holder' as who`.execute()
        r.release()
        expect(await outcome(waiting)).toEqual([{ who: 'pool' }])
        expect(await outcome(started)).toEqual([{ who: 'holder' }])
        // sent once the connection is the pool's again: refused, never run in another session
        r = await pool.reserve()
        r.release()
        await sleep(20)
        expect(await outcome(r`select 'late' as q`)).toBe('RESERVATION_RELEASED')
        // a queued query cancelled, then the release: the connection still goes back
        r = await pool.reserve()
        const first = r`select ${1}::int as a, pg_sleep(0.2)`.execute()
        await sleep(20)
        const queued = r`select 2 as b`
        queued.execute().catch(() => undefined)
        await sleep(5)
        void queued.cancel()
        r.release()
        expect(await outcome(first)).toMatchObject([{ a: 1 }])
        expect(await outcome(queued)).toBe('57014')
        expect(await outcome(pool<{ e: number }[]>`select 5 as e`)).toEqual([{ e: 5 }])
      })
      expect(unhandled).toEqual([])
    } finally {
      await pool.end({ timeout: 1 })
    }
  })

  it("keeps a released connection until the holder's query ends, and ends the pool at once after a release", async () => {
    let pool = directPool()
    try {
      // released while its query runs: the next reservation (and its session) waits for the end
      const holder = await pool.reserve()
      const running = holder`select pg_sleep(0.5)`.execute()
      holder.release()
      const asked = performance.now()
      const next = await pool.reserve()
      const waited = performance.now() - asked
      await running
      next.release()
      expect(waited).toBeGreaterThan(300)
    } finally {
      await pool.end({ timeout: 1 })
    }
    // the ingest pattern, then a shutdown: end() waited for a connection it had asked to end
    // while reserved, until its timeout destroyed it
    pool = directPool()
    const conn = await pool.reserve()
    await conn`select 1`
    conn.release()
    const started = performance.now()
    const ended = await Promise.race([pool.end().then(() => 'ended'), sleep(3_000, 'still ending after 3 s')])
    expect(ended).toBe('ended')
    expect(performance.now() - started).toBeLessThan(1_000)
    // ended while a query waited for the reserved connection, then released: the query runs,
    // and no connection is opened again for it once end() resolved (it kept the process alive)
    pool = directPool({ connection: { application_name: 'copy_binary_end_wait' } })
    const held = await pool.reserve()
    const waiting = pool<{ one: number }[]>`select 1 as one`.execute()
    await sleep(50)
    const ending = pool.end({ timeout: 5 })
    await sleep(50)
    held.release()
    expect(await waiting).toEqual([{ one: 1 }])
    await ending
    await sleep(300)
    const left = await collector.sql<{ left: number }[]>`
      select count(*)::int as left from pg_stat_activity where application_name = 'copy_binary_end_wait'`
    expect(left).toEqual([{ left: 0 }])
  })

  it('never strands a connection for a query cancelled before it went out', async () => {
    // the first query of a fresh pool, cancelled at once: the connection opened for it stayed
    // in the connecting queue for good
    let pool = directPool()
    try {
      const q = pool`select 1 as a`
      void q.execute()
      void q.cancel()
      expect(await outcome(q)).toBe('57014')
      expect(await outcome(pool<{ b: number }[]>`select 2 as b`)).toEqual([{ b: 2 }])
    } finally {
      await pool.end({ timeout: 1 })
    }
    // in a transaction, queued behind a parameterised statement: nothing after it ran
    pool = directPool()
    try {
      const tx = pool.begin(async (t) => {
        const first = t`select ${1}::int as a, pg_sleep(0.2)`.execute()
        await sleep(20)
        const q = t`select 2 as b`
        void q.execute().catch(() => undefined)
        await sleep(5)
        void q.cancel()
        await first
        return t<{ c: number }[]>`select 3 as c`
      })
      expect(await outcome(tx)).toBe('57014')
      expect(await outcome(pool<{ d: number }[]>`select 4 as d`)).toEqual([{ d: 4 }])
    } finally {
      await pool.end({ timeout: 1 })
    }
    // the same start-up path: without the types query, a fresh pool's reservation was never served
    pool = directPool({ fetch_types: false })
    try {
      const served = pool.reserve().then(async (r) => {
        const rows = await r<{ x: number }[]>`select 1 as x`
        r.release()
        return rows
      })
      expect(await outcome(served)).toEqual([{ x: 1 }])
    } finally {
      await pool.end({ timeout: 1 })
    }
  })

  it('gives a connection opened for a reservation after failed attempts the usual quick reconnect', async () => {
    const { listener } = forwarding()
    let proxy = createServer(listener)
    await listenOnLoopback(proxy)
    const port = (proxy.address() as AddressInfo).port
    // made while the port is known, used once nothing listens on it
    const pool = poolThrough(proxy, { connection: { application_name: 'copy_binary_backoff' } })
    await new Promise<void>((r) => proxy.close(() => r()))
    try {
      // refused five times: each attempt raises the pool's back-off
      for (let i = 0; i < 5; i++) await expect(pool`select 1`).rejects.toMatchObject({ code: 'ECONNREFUSED' })
      proxy = createServer(listener)
      await listenOnLoopback(proxy, port)
      // the connection opens for a reservation (an ingest COPY): that start-up must end the back-off too
      await copyRecords(pool, viaCopy, [record()])
      await collector.sql`select pg_terminate_backend(${await backendRunning('%', { app: 'copy_binary_backoff' })})`
      await sleep(50)
      const started = performance.now()
      await pool`select 1`
      // about 2 s of back-off left over before; a reconnect takes milliseconds
      expect(performance.now() - started).toBeLessThan(1_000)
    } finally {
      await pool.end({ timeout: 1 })
      proxy.close()
    }
  })

  it('keeps a reserved connection with its holder when the server refuses a large COPY before reading it', async () => {
    const pool = directPool()
    try {
      await pool`select 1`
      const conn = await pool.reserve()
      await conn`set application_name = 'the reservation'`
      // waits for the pool's one connection, which the reservation holds
      const outside = pool<{ app: string }[]>`select current_setting('application_name') as app`.execute()
      // refused at once (no such table) while most of its 40 MB are still being written
      await expect(conn.unsafe('copy copy_binary_missing from stdin').copyFrom(Buffer.alloc(40_000_000, 0x41))).rejects.toMatchObject({ code: '42P01' })
      const early = await Promise.race([outside.then(() => 'ran'), sleep(300, 'waited')])
      expect(early).toBe('waited')
      await conn`reset application_name`
      conn.release()
      expect((await outside)[0]!.app).not.toBe('the reservation')
    } finally {
      await pool.end({ timeout: 1 })
    }
  })

  it("gives a COPY waiting for the pool's busy connection the reconnected one when that backend is ended", async () => {
    const pool = directPool({ connection: { application_name: 'copy_binary_waiter' } })
    try {
      const busy = pool`select pg_sleep(30)`.execute()
      busy.catch(() => undefined)
      const pid = await backendRunning('select pg_sleep%', { app: 'copy_binary_waiter' })
      // copyRecords reserves a connection: the pool's one is busy, so the reservation waits
      const a = record()
      const copying = copyRecords(pool, viaCopy, [a])
      copying.catch(() => undefined)
      await collector.sql`select pg_terminate_backend(${pid})`
      await expect(busy).rejects.toMatchObject({ code: '57P01' })
      // the connection reopens for the waiting reservation, which must get it (it used to wait for ever)
      const done = await Promise.race([copying.then(() => 'stored'), sleep(5_000, 'still waiting after 5 s')])
      expect(done).toBe('stored')
      expect(await collector.sql`select 1 from llm_requests where id = ${a.id}`).toHaveLength(1)
      // released as usual: the pool serves the next query and the next reservation
      expect(await pool<{ one: number }[]>`select 1 as one`).toEqual([{ one: 1 }])
      await copyRecords(pool, viaCopy, [record()])
    } finally {
      await pool.end({ timeout: 1 })
    }
  })

  it('fails a reservation whose connection cannot be opened, and the pool connects again once it can', async () => {
    const { listener, state } = forwarding()
    let proxy = createServer(listener)
    await listenOnLoopback(proxy)
    const port = (proxy.address() as AddressInfo).port
    const pool = poolThrough(proxy, { connection: { application_name: 'copy_binary_refused' } })
    try {
      // the pool's one connection busy, and a reservation waiting for it
      const busy = pool`select pg_sleep(30)`.execute()
      busy.catch(() => undefined)
      const pid = await backendRunning('select pg_sleep%', { app: 'copy_binary_refused' })
      const reserving = pool.reserve()
      reserving.catch(() => undefined)
      // the collector's database goes away: no new connection (close() stops listening at once;
      // its callback would wait for the open connections), and the running ones end
      proxy.close()
      await collector.sql`select pg_terminate_backend(${pid})`
      await expect(reserving).rejects.toMatchObject({ code: 'ECONNREFUSED' })
      await expect(busy).rejects.toMatchObject({ code: '57P01' })
      // back: the pool opens its connection again, not to hand it to the failed reservation
      proxy = createServer(listener)
      await listenOnLoopback(proxy, port)
      const answered = await Promise.race([pool<{ one: number }[]>`select 1 as one`, sleep(5_000, 'no answer after 5 s')])
      expect(answered).toEqual([{ one: 1 }])
      const conn = await pool.reserve()
      expect(await conn<{ two: number }[]>`select 2 as two`).toEqual([{ two: 2 }])
      conn.release()
      expect(await pool<{ three: number }[]>`select 3 as three`).toEqual([{ three: 3 }])
    } finally {
      await pool.end({ timeout: 1 })
      proxy.close()
      for (const s of state.sockets) s.destroy()
    }
  })

  /** A proxy that resets (TCP RST) its first connection when `trigger` comes, before it reaches the server. */
  const resettingProxy = (trigger: string) =>
    proxyTo((d, n, client, server) => n === 1 && d.includes(trigger) && (client.resetAndDestroy(), server.destroy(), true))

  it('gives a query waiting for a reserved connection whose socket was reset a new connection, not the dead one', async () => {
    const { proxy, state } = await resettingProxy('copy llm_requests')
    const pool = poolThrough(proxy)
    try {
      const unhandled = await unhandledDuring(async () => {
        expect(await pool<{ one: number }[]>`select 1 as one`).toEqual([{ one: 1 }])
        // the COPY reserves the pool's one connection; the query waits for it
        const copying = copyRecords(pool, viaCopy, [record()])
        copying.catch(() => undefined)
        const queued = pool<{ q: string }[]>`select 'queued' as q`.execute()
        queued.catch(() => undefined)
        await expect(copying).rejects.toMatchObject({ code: 'ECONNRESET' })
        // the COPY's release came between the socket's error and its close: the waiting query
        // must not be handed the dead connection (it waited for ever), but the reconnected one
        const answer = await Promise.race([queued, sleep(5_000, 'no answer after 5 s')])
        expect(answer).toEqual([{ q: 'queued' }])
        expect(await pool<{ two: number }[]>`select 2 as two`).toEqual([{ two: 2 }])
        await copyRecords(pool, viaCopy, [record()])
        expect(state.connections).toBe(2)
      })
      expect(unhandled).toEqual([])
    } finally {
      await pool.end({ timeout: 1 })
      proxy.close()
    }
  })

  it('fails a query for a reserved connection whose socket was reset before it closed, rather than leaving it waiting', async () => {
    const { proxy } = await resettingProxy('pg_sleep')
    const pool = poolThrough(proxy)
    try {
      const conn = await pool.reserve()
      // the holder's next query comes as soon as the first fails: after the socket's error, before its close
      const next = conn`select pg_sleep(0)`.then(
        () => {
          throw new Error('the reset query succeeded')
        },
        (err: { code?: string }) => {
          expect(err.code).toBe('ECONNRESET')
          return conn`select 'after the reset' as q`.execute()
        },
      )
      const answer = await Promise.race([next.then(() => 'answered', (err: { code?: string }) => err.code), sleep(5_000, 'no answer after 5 s')])
      expect(answer).toBe('CONNECTION_CLOSED')
      conn.release()
      expect(await pool<{ one: number }[]>`select 1 as one`).toEqual([{ one: 1 }])
    } finally {
      await pool.end({ timeout: 1 })
      proxy.close()
    }
  })

  it('stores nothing of a batch holding a stored id (the insert path then skips it)', async () => {
    const batch = [record(), record()]
    await copyRecords(collector.sql, viaCopy, [batch[1]!])
    await expect(copyRecords(collector.sql, viaCopy, batch)).rejects.toMatchObject({ code: '23505' })
    const [row] = await collector.sql<{ n: number }[]>`select count(*)::int as n from llm_requests where id = ${batch[0]!.id}`
    expect(row).toEqual({ n: 0 })
  })
})
