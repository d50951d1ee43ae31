import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FallbackStore } from '../src/outbox/fallback.js'
import { SqliteStore } from '../src/outbox/sqlite.js'
import { Pipeline, type PipelineStats } from '../src/pipeline.js'
import type { SendResult } from '../src/ship/result.js'
import { tempDir } from './helpers.js'

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
function setup(o: { ship?: boolean; maxRecords?: number } = {}) {
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
})
