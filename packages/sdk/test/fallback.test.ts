import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FallbackStore } from '../src/outbox/fallback.js'
import { SqliteStore } from '../src/outbox/sqlite.js'
import { Pipeline, type PipelineStats } from '../src/pipeline.js'
import type { SendResult } from '../src/ship/result.js'
import Database from 'better-sqlite3'
import { makeGuard, tempDir, until } from './helpers.js'

/** Records big enough that a write needs new pages, which a full disk does not give. */
const rec = (i: number) => ({ id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, prompt: `p${i} ${'x'.repeat(6_000)}`, model: 'm', latency: 1 })
const ids = (from: number, n: number) => [...Array(n).keys()].map((i) => rec(from + i).id)

let tmp: ReturnType<typeof tempDir> | undefined
let file: SqliteStore | undefined
afterEach(() => {
  vi.useRealTimers()
  file?.close()
  tmp?.cleanup()
  file = tmp = undefined
})

/**
 * A pipeline on a real SQLite outbox whose disk can fill: max_page_count on the store's own
 * connection (SQLITE_FULL past it), the collector a function that is up or down.
 */
function setup(o: { ship?: boolean; maxRecords?: number; answer?: (batch: string[]) => SendResult | Promise<SendResult> } = {}) {
  vi.useFakeTimers()
  tmp = tempDir()
  file = new SqliteStore(join(tmp.dir, 'o.sqlite'))
  const db = file['db']
  const failures: string[] = []
  // the longest backoff each time: 0.5 s, 1 s, 2 s, 4 s...
  const store = new FallbackStore(file, (err) => failures.push(String((err as { code?: string }).code)), () => 1)
  const seen: string[][] = []
  const delivered: string[] = []
  const collector = { up: true }
  const send = async (json: string): Promise<SendResult> => {
    const batch = (JSON.parse(json) as { records: { id: string }[] }).records.map((r) => r.id)
    seen.push(batch)
    if (!collector.up) return { kind: 'retry', code: 'ECONNREFUSED', message: 'down' }
    if (o.answer) return o.answer(batch)
    delivered.push(...batch)
    return { kind: 'ok', result: { accepted: batch.length, duplicates: 0, rejected: [] } }
  }
  const stats: PipelineStats = { sent: 0, retried: 0, rejected: 0, dropped: 0, lastError: null, maxOutboxOpMs: 0 }
  const internal: unknown[] = []
  const p = new Pipeline({
    store,
    send: o.ship === false ? undefined : send,
    stats,
    durability: 'buffered',
    maxRecords: o.maxRecords ?? 10_000,
    writeDelayMs: 50,
    shipDelayMs: 100,
    pollMs: 60_000,
    onInternalError: (_w, e) => internal.push(e),
  })
  return {
    p,
    store,
    file,
    stats,
    seen,
    delivered,
    collector,
    failures,
    internal,
    db,
    fill: () => db.pragma('max_page_count = 1'),
    free: () => db.pragma('max_page_count = 1073741823'),
  }
}

describe('an outbox whose disk fills after start-up', () => {
  it('keeps the records in memory, tries the file with a backoff (not on every write), and moves them back once it has room', async () => {
    const { p, store, file, stats, delivered, collector, failures, internal, fill, free } = setup()
    collector.up = false
    fill()
    // a record every 100 ms for 3 s: a write every 100 ms
    for (let i = 0; i < 30; i++) {
      p.enqueue(rec(i))
      await vi.advanceTimersByTimeAsync(100)
    }
    // tried at 0.05 s, then 0.5 and 1 s later: three tries, not thirty
    expect(failures).toEqual(['SQLITE_FULL', 'SQLITE_FULL', 'SQLITE_FULL'])
    expect(file.count()).toBe(0)
    expect(store.spilled).toBe(30)
    expect(stats).toMatchObject({ dropped: 0, sent: 0 })
    free()
    // no new record: the next tries come by themselves and move back each record the refused
    // sends let go of (the shipper's own backoff reaches a minute)
    await vi.advanceTimersByTimeAsync(70_000)
    expect(store.spilled).toBe(0)
    expect(store.retryAt).toBeUndefined()
    expect(file.count()).toBe(30)
    expect(failures).toHaveLength(3)
    collector.up = true
    await vi.advanceTimersByTimeAsync(70_000)
    expect(delivered.sort()).toEqual(ids(0, 30))
    expect(stats).toMatchObject({ sent: 30, dropped: 0 })
    expect(file.count()).toBe(0)
    expect(internal).toEqual([])
    p.close()
    expect(p.timersPending).toBe(0)
  })

  it('ships from memory while the disk is full, each record once, and writes to the file again once it has room', async () => {
    const { p, store, file, stats, seen, failures, fill, free } = setup()
    fill()
    for (let i = 0; i < 5; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(200)
    expect(seen).toEqual([ids(0, 5)])
    expect(stats).toMatchObject({ sent: 5, dropped: 0 })
    expect(store.count()).toBe(0)
    expect(failures).toEqual(['SQLITE_FULL'])
    free()
    await vi.advanceTimersByTimeAsync(1_000)
    for (let i = 5; i < 10; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(50)
    // in the file again, leased to this process until its batch goes
    expect(store.spilled).toBe(0)
    expect(file.count()).toBe(5)
    await vi.advanceTimersByTimeAsync(200)
    expect(seen.flat()).toEqual(ids(0, 10))
    expect(stats).toMatchObject({ sent: 10, dropped: 0 })
    expect(file.count()).toBe(0)
    p.close()
  })

  it('holds no more than the cap in memory: the oldest are dropped, counted, and not sent', async () => {
    const { p, store, stats, seen, collector, fill } = setup({ maxRecords: 5 })
    collector.up = false
    fill()
    for (let i = 0; i < 5; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(200)
    for (let i = 5; i < 8; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(50)
    expect(store.spilled).toBe(5)
    expect(stats.dropped).toBe(3)
    collector.up = true
    seen.length = 0
    await vi.advanceTimersByTimeAsync(70_000)
    expect(seen.flat().sort()).toEqual(ids(3, 5))
    expect(stats).toMatchObject({ sent: 5, dropped: 3 })
    p.close()
  })

  it.each([
    ['has room again', true],
    ['is still full', false],
  ])('at shutdown, what memory holds goes to the file if it %s, else it is counted as dropped', async (_, room) => {
    const { p, store, file, stats, fill, free } = setup({ ship: false })
    fill()
    for (let i = 0; i < 5; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(50)
    expect(store.spilled).toBe(5)
    if (room) free()
    p.close()
    expect(store.spilled).toBe(0)
    expect(file.count()).toBe(room ? 5 : 0)
    expect(stats.dropped).toBe(room ? 0 : 5)
    expect(p.timersPending).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it.each([
    ['reach the dead-letter table once the file takes writes again', true],
    ['are counted as dropped at shutdown if the file still fails', false],
  ])('records refused by the collector while they ship from memory %s', async (_, room) => {
    const { p, store, file, stats, fill, free } = setup({ answer: () => ({ kind: 'reject', code: 'VALIDATION_ERROR', message: 'bad', status: 422 }) })
    fill()
    p.enqueue(rec(1))
    await vi.advanceTimersByTimeAsync(300)
    expect(stats.rejected).toBe(1)
    expect(store.parkedCount()).toBe(1)
    if (room) {
      free()
      await vi.advanceTimersByTimeAsync(5_000)
      expect(file.parkedCount()).toBe(1)
      expect(file.listParked(10)[0]).toMatchObject({ id: rec(1).id, code: 'VALIDATION_ERROR' })
    }
    p.close()
    expect(file.parkedCount()).toBe(room ? 1 : 0)
    // nothing left in memory to report as parked after shutdown
    expect(store.parkedCount()).toBe(room ? 1 : 0)
    expect(stats.dropped).toBe(room ? 0 : 1)
  })

  it('counts a batch the collector took as sent when the file refuses even the deletes, and deletes them once it can', async () => {
    const { p, file, stats, seen, db } = setup()
    for (let i = 0; i < 3; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(60)
    expect(file.count()).toBe(3)
    // the file made read-only underneath: no write at all, a delete neither (a full disk does that too)
    db.pragma('query_only = 1')
    for (let i = 3; i < 6; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(100)
    // one batch: three from the file, three from memory
    expect(seen).toEqual([ids(0, 6)])
    expect(stats).toMatchObject({ sent: 6, dropped: 0 })
    db.pragma('query_only = 0')
    await vi.advanceTimersByTimeAsync(120_000)
    expect(file.count()).toBe(0)
    expect(seen.flat()).toEqual(ids(0, 6))
    expect(stats).toMatchObject({ sent: 6, dropped: 0 })
    p.close()
  })

  it('on a file that refuses even a lease, a pass ends drained instead of failing every second', async () => {
    const { p, file, stats, collector, db } = setup()
    collector.up = false
    for (let i = 0; i < 3; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(200)
    expect(stats.retried).toBe(3)
    db.pragma('query_only = 1')
    collector.up = true
    const claim = vi.spyOn(file, 'claim')
    await vi.advanceTimersByTimeAsync(60_000)
    expect(claim.mock.calls.length).toBeLessThanOrEqual(2)
    db.pragma('query_only = 0')
    await vi.advanceTimersByTimeAsync(120_000)
    expect(stats).toMatchObject({ sent: 3, dropped: 0 })
    p.close()
  })

  it('backs off when new records fit but the ones waiting in memory do not', async () => {
    const { p, store, failures, db } = setup({ ship: false })
    const small = (i: number) => ({ id: rec(i).id, prompt: `s${i}`, model: 'm', latency: 1 })
    db.pragma(`max_page_count = ${(db.pragma('page_count', { simple: true }) as number) + 1}`)
    for (let i = 0; i < 3; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(100)
    expect(store.spilled).toBe(3)
    for (let i = 10; i < 310; i++) {
      p.enqueue(small(i))
      await vi.advanceTimersByTimeAsync(100)
    }
    // 0.5 s doubling: 0.05, 0.55, 1.55, 3.55, 7.55, 15.55 s, not every 0.5 s
    expect(failures.length).toBeLessThanOrEqual(7)
    p.close()
  })

  it('at shutdown on a nearly full disk, saves what fits and counts the rest as dropped', async () => {
    const { p, store, file, stats, db, fill } = setup({ ship: false })
    fill()
    for (let i = 0; i < 100; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(60)
    expect(store.spilled).toBe(100)
    // room for about half of them
    db.pragma(`max_page_count = ${(db.pragma('page_count', { simple: true }) as number) + 80}`)
    p.close()
    expect(file.count()).toBeGreaterThan(0)
    expect(file.count()).toBeLessThan(100)
    expect(stats.dropped).toBe(100 - file.count())
    // the oldest are the ones saved
    db.pragma('max_page_count = 1073741823')
    const saved = file.claim(100, Infinity, 1, Date.now()).map((r) => r.id)
    expect(saved).toEqual(ids(0, saved.length))
  })

  it('keeps the cap for file and memory together, and moves older records back before newer ones so the cap drops the oldest', async () => {
    const { p, store, file, stats, fill, free } = setup({ ship: false, maxRecords: 5 })
    for (let i = 0; i < 3; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(60)
    fill()
    for (let i = 3; i < 6; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(60)
    // three in the file leave room for two in memory
    expect(file.count()).toBe(3)
    expect(store.spilled).toBe(2)
    expect(store.count()).toBe(5)
    expect(stats.dropped).toBe(1)
    free()
    // the file is tried again at 0.61 s: the new records come after the ones memory held
    await vi.advanceTimersByTimeAsync(500)
    for (let i = 6; i < 8; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(60)
    expect(store.spilled).toBe(0)
    expect(stats.dropped).toBe(3)
    const kept = file.claim(100, Infinity, 1, Date.now()).map((r) => r.id)
    // 3 went while the file failed (the oldest memory held); 0 and 1 once it took writes again
    expect(kept).toEqual([rec(2).id, rec(4).id, rec(5).id, rec(6).id, rec(7).id])
    p.close()
  })

  it('at shutdown with a batch from memory in flight, a record is counted as sent or as dropped, not both', async () => {
    let answer!: () => void
    const { p, stats, fill } = setup({
      answer: (batch) => new Promise<SendResult>((resolve) => (answer = () => resolve({ kind: 'ok', result: { accepted: batch.length, duplicates: 0, rejected: [] } }))),
    })
    fill()
    for (let i = 0; i < 5; i++) p.enqueue(rec(i))
    await vi.advanceTimersByTimeAsync(200)
    p.close()
    // not saved, and no answer yet: dropped, as far as anyone can tell
    expect(stats).toMatchObject({ sent: 0, dropped: 5 })
    answer()
    await vi.advanceTimersByTimeAsync(10)
    expect(stats).toMatchObject({ sent: 5, dropped: 0 })
  })
})

describe('shutdown with records in memory for a file another process holds locked', () => {
  let tmp: ReturnType<typeof tempDir> | undefined
  afterEach(() => tmp?.cleanup())

  it('tries the file again until its bound, as for the buffer: nothing dropped', async () => {
    tmp = tempDir()
    const path = join(tmp.dir, 'outbox.sqlite')
    const { guard } = makeGuard(undefined, tmp.dir, { writeDelayMs: 10 })
    const db = (guard['store'] as unknown as { file: SqliteStore }).file['db']
    db.pragma('max_page_count = 1')
    for (let i = 0; i < 3; i++) guard.record(rec(i))
    await until(() => guard.stats().lastError?.code === 'OUTBOX_ERROR', 2_000, 'the write to fail')
    db.pragma('max_page_count = 1073741823')
    const other = new Database(path)
    other.exec('BEGIN IMMEDIATE')
    setTimeout(() => {
      other.exec('COMMIT')
      other.close()
    }, 100)
    await guard.shutdown({ timeoutMs: 1_000 })
    expect(guard.stats()).toMatchObject({ dropped: 0, queued: 3 })
    const file = new SqliteStore(path, { forReading: true })
    expect(file.count()).toBe(3)
    file.close()
  })
})
