import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { SqliteStore } from '../src/outbox/sqlite.js'
import { MemoryStore } from '../src/outbox/store.js'
import { Pipeline, type PipelineStats } from '../src/pipeline.js'
import { backoffDelay, parseRetryAfter } from '../src/ship/backoff.js'
import { batchBody, takeBatch } from '../src/ship/batch.js'
import { classifyFailure, type SendResult } from '../src/ship/result.js'
import { Shipper } from '../src/ship/shipper.js'
import { tempDir } from './helpers.js'

const rec = (i: number) => ({ id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, prompt: `p${i}`, model: 'm', latency: 1 })

function fresh(): PipelineStats {
  return { sent: 0, retried: 0, rejected: 0, dropped: 0, lastError: null, maxOutboxOpMs: 0 }
}

describe('backoff', () => {
  it('grows exponentially with jitter inside [ceiling/2, ceiling] and caps', () => {
    expect(backoffDelay(1, undefined, () => 0)).toBe(250)
    expect(backoffDelay(1, undefined, () => 1)).toBe(500)
    expect(backoffDelay(4, undefined, () => 1)).toBe(4000)
    expect(backoffDelay(30, undefined, () => 1)).toBe(60_000)
    expect(backoffDelay(30, undefined, () => 0)).toBe(30_000)
  })
  it('never retries sooner than Retry-After', () => {
    expect(backoffDelay(1, 7000, () => 0.5)).toBe(7000)
    expect(backoffDelay(10, 1000, () => 1)).toBe(60_000 > 1000 ? Math.min(60_000, 500 * 2 ** 9) : 0)
  })
  it('parses Retry-After seconds and dates', () => {
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(parseRetryAfter('3', now)).toBe(3000)
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now)).toBe(10_000)
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter(undefined, now)).toBeUndefined()
  })
})

describe('classifying answers', () => {
  it('maps statuses and codes to the result union', () => {
    expect(classifyFailure(413, 'PAYLOAD_TOO_LARGE', 'x', undefined).kind).toBe('too-large')
    expect(classifyFailure(429, 'RATE_LIMITED', 'x', 2000)).toMatchObject({ kind: 'retry', afterMs: 2000 })
    expect(classifyFailure(429, 'PLAN_LIMIT_EXCEEDED', 'x', 2000).kind).toBe('reject')
    expect(classifyFailure(503, 'NOT_READY', 'x', undefined).kind).toBe('retry')
    expect(classifyFailure(401, 'UNAUTHORIZED', 'x', undefined).kind).toBe('fatal')
    expect(classifyFailure(403, 'INVALID_API_KEY', 'x', undefined).kind).toBe('fatal')
    expect(classifyFailure(405, undefined, '<h1>405 Not Allowed</h1>', undefined)).toMatchObject({ kind: 'fatal', code: 'HTTP_405' })
    expect(classifyFailure(400, 'VALIDATION_ERROR', 'x', undefined).kind).toBe('reject')
  })
  it('cuts batches by count and bytes, always at least one row', () => {
    const rows = [1, 2, 3, 4].map((seq) => ({ seq, body: 'x'.repeat(100), bytes: 100 }))
    expect(takeBatch(rows, 3, 10_000)).toHaveLength(3)
    expect(takeBatch(rows, 10, 250)).toHaveLength(2)
    expect(takeBatch(rows, 10, 10)).toHaveLength(1)
    expect(batchBody(rows.slice(0, 2).map((r, i) => ({ ...r, body: `{"i":${i}}` })))).toBe('{"records":[{"i":0},{"i":1}]}')
  })
})

/** A scripted stand-in for the collector port: answers in order, then accepts everything. */
function scriptedSend(script: SendResult[]) {
  const seen: string[][] = []
  const send = async (json: string): Promise<SendResult> => {
    const ids = (JSON.parse(json) as { records: { id: string }[] }).records.map((r) => r.id)
    seen.push(ids)
    const next = script.shift()
    if (next) return next
    return { kind: 'ok', result: { accepted: ids.length, duplicates: 0, rejected: [] } }
  }
  return { send, seen }
}

/** A collector that refuses with a whole-batch 400 every batch holding `bad`, and takes the rest. */
function refusingBatchesWith(bad: string) {
  const seen: string[][] = []
  const send = async (json: string): Promise<SendResult> => {
    const ids = (JSON.parse(json) as { records: { id: string }[] }).records.map((r) => r.id)
    seen.push(ids)
    if (ids.includes(bad)) return { kind: 'reject', code: 'MALFORMED_JSON', message: 'bad', status: 400 }
    return { kind: 'ok', result: { accepted: ids.length, duplicates: 0, rejected: [] } }
  }
  return { send, seen }
}

describe('shipper decisions', () => {
  it('halves on 413 until it fits, then grows back; parks a single record that never fits', async () => {
    const store = new MemoryStore()
    store.append([...Array(8)].map((_, i) => ({ id: `r${i}`, body: JSON.stringify(rec(i)), bytes: 10, createdAt: 0 })), 100)
    const { send, seen } = scriptedSend([
      { kind: 'too-large', message: 'big' },
      { kind: 'too-large', message: 'big' },
    ])
    const stats = fresh()
    const shipper = new Shipper({ store, send, stats, maxRecords: 8 })
    expect(await shipper.pass()).toEqual({ kind: 'drained' })
    expect(seen.map((s) => s.length)).toEqual([8, 4, 2, 4, 2])
    expect(stats.sent).toBe(8)
    expect(store.count()).toBe(0)

    store.append([{ id: 'huge', body: JSON.stringify(rec(99)), bytes: 10, createdAt: 0 }], 100)
    const one = scriptedSend([{ kind: 'too-large', message: 'still big' }])
    const s2 = new Shipper({ store, send: one.send, stats })
    await s2.pass()
    expect(store.parkedCount()).toBe(1)
    expect(store.listParked(10)[0]).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', status: 413 })
  })

  it('parks records the collector rejects by index and acks the rest', async () => {
    const store = new MemoryStore()
    store.append([0, 1, 2].map((i) => ({ id: `r${i}`, body: JSON.stringify(rec(i)), bytes: 10, createdAt: 0 })), 100)
    const { send } = scriptedSend([{ kind: 'ok', result: { accepted: 2, duplicates: 0, rejected: [{ index: 1, code: 'VALIDATION_ERROR', message: 'model: too long' }] } }])
    const stats = fresh()
    await new Shipper({ store, send, stats }).pass()
    expect(store.count()).toBe(0)
    expect(store.listParked(10)).toMatchObject([{ id: 'r1', code: 'VALIDATION_ERROR', message: 'model: too long' }])
    expect(stats).toMatchObject({ sent: 2, rejected: 1 })
    expect(store.replayParked()).toBe(1)
    expect(store.count()).toBe(1)
  })

  it('bisects a whole-batch 400 down to the bad record and parks only it', async () => {
    const store = new MemoryStore()
    store.append([0, 1, 2, 3].map((i) => ({ id: `r${i}`, body: JSON.stringify(rec(i)), bytes: 10, createdAt: 0 })), 100)
    const bad = rec(2).id
    const { send, seen } = refusingBatchesWith(bad)
    const stats = fresh()
    await new Shipper({ store, send, stats }).pass()
    expect(seen.map((s) => s.length)).toEqual([4, 2, 2, 1, 1])
    expect(store.listParked(10).map((p) => JSON.parse(p.body).id)).toEqual([bad])
    expect(stats.sent).toBe(3)
  })
})

describe('shipper on the SQLite outbox (a write is one row)', () => {
  let tmp: ReturnType<typeof tempDir> | undefined
  let store: SqliteStore | undefined
  afterEach(() => {
    store?.close()
    tmp?.cleanup()
  })
  const open = () => {
    tmp = tempDir()
    store = new SqliteStore(join(tmp.dir, 'o.sqlite'))
    return store
  }
  const write = (s: SqliteStore, from: number, n: number) =>
    s.append([...Array(n).keys()].map((i) => ({ id: rec(from + i).id, body: JSON.stringify(rec(from + i)), bytes: 10, createdAt: 0 })), 100)

  it('halves on 413 inside one row and sends every record once', async () => {
    const s = open()
    write(s, 0, 8)
    const { send, seen } = scriptedSend([
      { kind: 'too-large', message: 'big' },
      { kind: 'too-large', message: 'big' },
    ])
    const stats = fresh()
    expect(await new Shipper({ store: s, send, stats, maxRecords: 8 }).pass()).toEqual({ kind: 'drained' })
    expect(seen.map((b) => b.length)).toEqual([8, 4, 2, 4, 2])
    // after the two refusals, each record went out in exactly one accepted batch
    expect(seen.slice(2).flat().sort()).toEqual([...Array(8).keys()].map((i) => rec(i).id))
    expect(stats.sent).toBe(8)
    expect(s.count()).toBe(0)
  })

  it('parks one rejected record out of a row, acks the rest, and replays it alone', async () => {
    const s = open()
    write(s, 0, 3)
    write(s, 3, 2)
    const { send, seen } = scriptedSend([{ kind: 'ok', result: { accepted: 4, duplicates: 0, rejected: [{ index: 1, code: 'VALIDATION_ERROR', message: 'model: too long' }] } }])
    const stats = fresh()
    await new Shipper({ store: s, send, stats }).pass()
    expect(seen).toEqual([[0, 1, 2, 3, 4].map((i) => rec(i).id)])
    expect(s.count()).toBe(0)
    expect(s.listParked(10)).toMatchObject([{ id: rec(1).id, body: JSON.stringify(rec(1)), code: 'VALIDATION_ERROR' }])
    expect(stats).toMatchObject({ sent: 4, rejected: 1 })
    expect(s.replayParked()).toBe(1)
    const again = scriptedSend([])
    await new Shipper({ store: s, send: again.send, stats }).pass()
    expect(again.seen).toEqual([[rec(1).id]])
    expect(s.count()).toBe(0)
  })

  it('bisects a whole-batch 400 inside one row down to the bad record and parks only it', async () => {
    const s = open()
    write(s, 0, 4)
    const bad = rec(2).id
    const { send, seen } = refusingBatchesWith(bad)
    const stats = fresh()
    await new Shipper({ store: s, send, stats }).pass()
    expect(seen.map((b) => b.length)).toEqual([4, 2, 2, 1, 1])
    expect(s.listParked(10).map((p) => p.id)).toEqual([bad])
    expect(stats.sent).toBe(3)
    expect(s.count()).toBe(0)
  })
})

describe('pipeline on the SQLite outbox: writes of several records through the shipper', () => {
  let tmp: ReturnType<typeof tempDir> | undefined
  let store: SqliteStore | undefined
  afterEach(() => {
    vi.useRealTimers()
    store?.close()
    tmp?.cleanup()
  })
  const setup = (send: (json: string) => Promise<SendResult>) => {
    vi.useFakeTimers()
    tmp = tempDir()
    store = new SqliteStore(join(tmp.dir, 'o.sqlite'))
    const stats = fresh()
    const p = new Pipeline({ store, send, stats, durability: 'buffered', maxRecords: 10_000, writeDelayMs: 50, shipDelayMs: 100, pollMs: 60_000, onInternalError: (w, e) => { throw e } })
    return { p, stats, store }
  }
  const idsOf = (json: string) => (JSON.parse(json) as { records: { id: string }[] }).records.map((r) => r.id)

  it('halves a 413 inside one write and delivers each record once', async () => {
    const { send, seen } = scriptedSend([
      { kind: 'too-large', message: 'big' },
      { kind: 'too-large', message: 'big' },
    ])
    const { p, stats, store } = setup(send)
    for (let i = 0; i < 8; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(200)
    expect(seen.map((b) => b.length)).toEqual([8, 4, 2, 4, 2])
    expect(seen.slice(2).flat().sort()).toEqual([...Array(8).keys()].map((i) => rec(i).id))
    expect(stats.sent).toBe(8)
    expect(store.count()).toBe(0)
    p.close()
  })

  it('parks the rejected record of a write by its index, acks the others', async () => {
    const { send } = scriptedSend([{ kind: 'ok', result: { accepted: 5, duplicates: 0, rejected: [{ index: 6, code: 'VALIDATION_ERROR', message: 'bad' }] } }])
    const { p, stats, store } = setup(send)
    for (let i = 0; i < 4; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(50)
    for (let i = 4; i < 10; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(150)
    // two writes, one batch: index 6 is the third record of the second write
    const parked = store.listParked(10)
    expect(parked).toMatchObject([{ id: rec(6).id, code: 'VALIDATION_ERROR' }])
    expect(JSON.parse(parked[0]!.body)).toMatchObject(rec(6))
    expect(stats).toMatchObject({ sent: 9, rejected: 1 })
    expect(store.count()).toBe(0)
    p.close()
  })

  it('ends a batch inside a write at the record limit; the rest goes next', async () => {
    const seen: string[][] = []
    const send = async (json: string): Promise<SendResult> => {
      const ids = idsOf(json)
      seen.push(ids)
      return { kind: 'ok', result: { accepted: ids.length, duplicates: 0, rejected: [] } }
    }
    const { p, stats, store } = setup(send)
    // three writes of 400 before the first pass: the third has to be cut at 1,000
    for (let t = 0; t < 3; t++) {
      for (let i = 0; i < 400; i++) p.enqueue(rec(t * 400 + i))
      p.write()
    }
    await vi.advanceTimersByTimeAsync(200)
    expect(seen.map((b) => b.length)).toEqual([1000, 200])
    expect(seen.flat()).toEqual([...Array(1200).keys()].map((i) => rec(i).id))
    expect(stats.sent).toBe(1200)
    expect(store.count()).toBe(0)
    p.close()
  })

  it('a failed send hands the whole write back to the outbox, where it ships from once', async () => {
    const { send, seen } = scriptedSend([{ kind: 'retry', code: 'INTERNAL', message: '500', status: 500 }])
    const { p, stats, store } = setup(send)
    for (let i = 0; i < 6; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(150)
    expect(seen).toHaveLength(1)
    // released: another process could claim it now
    expect(store.count()).toBe(6)
    await vi.advanceTimersByTimeAsync(1_000)
    expect(seen).toHaveLength(2)
    expect(seen[1]).toEqual([...Array(6).keys()].map((i) => rec(i).id))
    expect(stats).toMatchObject({ sent: 6, retried: 6 })
    expect(store.count()).toBe(0)
    p.close()
  })
})

describe('the cap and the records this process holds to send', () => {
  let tmp: ReturnType<typeof tempDir> | undefined
  let sqlite: SqliteStore | undefined
  afterEach(() => {
    vi.useRealTimers()
    sqlite?.close()
    tmp?.cleanup()
    sqlite = tmp = undefined
  })
  const setup = (kind: 'sqlite' | 'memory', send: (json: string) => Promise<SendResult>) => {
    vi.useFakeTimers()
    tmp = tempDir()
    const store = kind === 'sqlite' ? (sqlite = new SqliteStore(join(tmp.dir, 'o.sqlite'))) : new MemoryStore()
    const stats = fresh()
    const p = new Pipeline({ store, send, stats, durability: 'buffered', maxRecords: 5, writeDelayMs: 50, shipDelayMs: 100, pollMs: 60_000, onInternalError: (w, e) => { throw e } })
    return { p, stats, store }
  }
  const ids = (from: number, n: number) => [...Array(n).keys()].map((i) => rec(from + i).id)

  it.each(['sqlite', 'memory'] as const)('%s: records the cap drops while they wait to be sent are not sent, and counted once', async (kind) => {
    const { send, seen } = scriptedSend([])
    const { p, stats, store } = setup(kind, send)
    for (let i = 0; i < 5; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(50)
    // written and leased to this process, the batch not yet due: five more push them out
    for (let i = 5; i < 10; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(200)
    expect(seen.flat()).toEqual(ids(5, 5))
    expect(stats).toMatchObject({ sent: 5, dropped: 5 })
    expect(store.count()).toBe(0)
    p.close()
  })

  it.each([
    ['sqlite', 'ok'],
    ['sqlite', 'retry'],
    ['memory', 'ok'],
    ['memory', 'retry'],
  ] as const)('%s: records the cap drops while in flight count as their answer says (%s)', async (kind, answer) => {
    const seen: string[][] = []
    let answerFirst: ((r: SendResult) => void) | undefined
    const send = (json: string): Promise<SendResult> => {
      const batch = (JSON.parse(json) as { records: { id: string }[] }).records.map((r) => r.id)
      seen.push(batch)
      if (seen.length === 1) return new Promise((resolve) => (answerFirst = resolve))
      return Promise.resolve({ kind: 'ok', result: { accepted: batch.length, duplicates: 0, rejected: [] } })
    }
    const { p, stats, store } = setup(kind, send)
    for (let i = 0; i < 5; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(150)
    expect(seen).toEqual([ids(0, 5)])
    // the first batch in flight: five more push it out of the outbox
    for (let i = 5; i < 10; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(50)
    expect(store.count()).toBe(5)
    answerFirst!(answer === 'ok' ? { kind: 'ok', result: { accepted: 5, duplicates: 0, rejected: [] } } : { kind: 'retry', code: 'INTERNAL', message: '500', status: 500 })
    await vi.advanceTimersByTimeAsync(2_000)
    expect(seen.slice(1).flat()).toEqual(ids(5, 5))
    // taken by the collector: sent, not dropped; refused: gone from the outbox, so dropped
    expect(stats).toMatchObject(answer === 'ok' ? { sent: 10, dropped: 0 } : { sent: 5, dropped: 5, retried: 5 })
    expect(store.count()).toBe(0)
    p.close()
  })

  it('two processes on one file: records in flight that the other process dropped are its count, not given back here', async () => {
    vi.useFakeTimers()
    tmp = tempDir()
    const path = join(tmp.dir, 'o.sqlite')
    const answers: (() => void)[] = []
    const held = (json: string): Promise<SendResult> => {
      const n = (JSON.parse(json) as { records: unknown[] }).records.length
      return new Promise((resolve) => answers.push(() => resolve({ kind: 'ok', result: { accepted: n, duplicates: 0, rejected: [] } })))
    }
    const files: SqliteStore[] = []
    const make = (send: (json: string) => Promise<SendResult>) => {
      const store = new SqliteStore(path)
      files.push(store)
      const stats = fresh()
      const p = new Pipeline({ store, send, stats, durability: 'buffered', maxRecords: 10, writeDelayMs: 10, shipDelayMs: 20, pollMs: 60_000, onInternalError: (w, e) => { throw e } })
      return { p, stats }
    }
    const a = make(held)
    // b's own sends never answer: only its writes matter
    const b = make(() => new Promise<SendResult>(() => {}))
    for (let i = 0; i < 10; i++) a.p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(40)
    expect(answers).toHaveLength(1)
    // b's write drops five of a's records in flight, and counts them
    for (let i = 100; i < 105; i++) b.p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(12)
    // a's write drops a's other five: a counts those, and gives them back until the answer
    for (let i = 10; i < 15; i++) a.p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(12)
    expect(a.stats.dropped).toBe(0)
    expect(b.stats.dropped).toBe(5)
    answers[0]!()
    await vi.advanceTimersByTimeAsync(1)
    expect(a.stats).toMatchObject({ sent: 10, dropped: 0 })
    a.p.close()
    b.p.close()
    for (const f of files) f.close()
  })
})

describe('pipeline timers (fake)', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('retries 500 and 429 with backoff honouring Retry-After, then ships everything once', async () => {
    vi.useFakeTimers()
    const store = new MemoryStore()
    const sentAt: number[] = []
    const scripted = scriptedSend([
      { kind: 'retry', code: 'INTERNAL', message: '500', status: 500 },
      { kind: 'retry', code: 'RATE_LIMITED', message: '429', status: 429, afterMs: 10_000 },
    ])
    const seen = scripted.seen
    const send = (json: string) => {
      sentAt.push(Date.now())
      return scripted.send(json)
    }
    const stats = fresh()
    const p = new Pipeline({ store, send, stats, durability: 'buffered', maxRecords: 1000, writeDelayMs: 50, shipDelayMs: 100, pollMs: 60_000, onInternalError: (w, e) => { throw e } })
    const t0 = Date.now()
    for (let i = 0; i < 5; i++) p.enqueue(rec(i))
    expect(store.count()).toBe(0)
    await vi.advanceTimersByTimeAsync(50)
    expect(store.count()).toBe(5)
    await vi.advanceTimersByTimeAsync(100)
    expect(seen).toHaveLength(1)
    expect(sentAt[0]! - t0).toBe(150)
    await vi.advanceTimersByTimeAsync(20_000)
    expect(seen).toHaveLength(3)
    // first retry 250–500 ms after the 500; the 429 asked for 10 s and got at least that
    expect(sentAt[1]! - sentAt[0]!).toBeGreaterThanOrEqual(250)
    expect(sentAt[1]! - sentAt[0]!).toBeLessThanOrEqual(500)
    expect(sentAt[2]! - sentAt[1]!).toBeGreaterThanOrEqual(10_000)
    expect(sentAt[2]! - sentAt[1]!).toBeLessThan(10_050)
    expect(stats).toMatchObject({ sent: 5, retried: 10 })
    expect(store.count()).toBe(0)
    expect(stats.lastError?.code).toBe('RATE_LIMITED')
    p.close()
    expect(p.timersPending).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('cuts batches at the byte limit by real UTF-8 size: big records are counted, small ones never reach it', async () => {
    vi.useFakeTimers()
    const store = new MemoryStore()
    const seen: number[] = []
    const send = async (json: string): Promise<SendResult> => {
      expect(Buffer.byteLength(json)).toBeLessThanOrEqual(5 * 1024 * 1024)
      const n = (JSON.parse(json) as { records: unknown[] }).records.length
      seen.push(n)
      return { kind: 'ok', result: { accepted: n, duplicates: 0, rejected: [] } }
    }
    const stats = fresh()
    const p = new Pipeline({ store, send, stats, durability: 'buffered', maxRecords: 10_000, writeDelayMs: 50, shipDelayMs: 100, pollMs: 60_000, onInternalError: (w, e) => { throw e } })
    // 1M chars, 2 MB of UTF-8 each: two fit in a batch, three do not (as chars, all three would)
    for (let i = 0; i < 3; i++) p.enqueue({ ...rec(i), prompt: 'é'.repeat(1_000_000) })
    await vi.advanceTimersByTimeAsync(200)
    expect(seen).toEqual([2, 1])
    // 1,000 records of ~1.7k ASCII chars: one full batch, under the byte limit
    seen.length = 0
    for (let i = 0; i < 1000; i++) p.enqueue({ ...rec(100 + i), prompt: 'x'.repeat(1600) })
    await vi.advanceTimersByTimeAsync(200)
    expect(seen).toEqual([1000])
    expect(stats.sent).toBe(1003)
    p.close()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('caps the outbox: the oldest are dropped and counted', async () => {
    vi.useFakeTimers()
    const store = new MemoryStore()
    const stats = fresh()
    const p = new Pipeline({ store, send: undefined, stats, durability: 'buffered', maxRecords: 3, writeDelayMs: 50, shipDelayMs: 100, pollMs: 60_000, onInternalError: () => {} })
    for (let i = 0; i < 5; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(50)
    expect(stats.dropped).toBe(2)
    expect(store.claim(10, 1e9, 1000, Date.now()).map((r) => JSON.parse(r.body).prompt)).toEqual(['p2', 'p3', 'p4'])
    p.close()
    expect(vi.getTimerCount()).toBe(0)
  })
})
