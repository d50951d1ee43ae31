import { spawnSync } from 'node:child_process'
import { hostname } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SqliteStore } from '../src/outbox/sqlite.js'
import { isBusy, type NewRow } from '../src/outbox/store.js'
import { tempDir } from './helpers.js'

let tmp: ReturnType<typeof tempDir>
const open: SqliteStore[] = []
beforeEach(() => {
  tmp = tempDir()
})
afterEach(() => {
  for (const s of open.splice(0)) s.close()
  tmp.cleanup()
})
const store = (file = 'o.sqlite') => {
  const s = new SqliteStore(join(tmp.dir, file))
  open.push(s)
  return s
}
const rows = (from: number, n: number): NewRow[] =>
  [...Array(n).keys()].map((i) => ({ id: `id${from + i}`, body: JSON.stringify({ n: from + i }), bytes: 10, createdAt: 0 }))

describe('SqliteStore', () => {
  it('uses WAL and survives reopening', () => {
    const a = store()
    a.append(rows(0, 3), 100)
    a.setMeta('k', 'v')
    a.close()
    const db = new Database(join(tmp.dir, 'o.sqlite'))
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    db.close()
    const b = store()
    expect(b.count()).toBe(3)
    expect(b.getMeta('k')).toBe('v')
  })

  it('creates a new file with 16 KB pages and keeps the page size of an existing one', () => {
    const a = store()
    a.close()
    const db = new Database(join(tmp.dir, 'o.sqlite'))
    expect(db.pragma('page_size', { simple: true })).toBe(16384)
    db.close()
    // a file an older SDK created: 4 KB pages, WAL, which cannot change without a VACUUM
    const old = new Database(join(tmp.dir, 'old.sqlite'))
    old.pragma('page_size = 4096')
    old.pragma('journal_mode = WAL')
    old.exec('CREATE TABLE t (x)')
    old.close()
    const b = store('old.sqlite')
    b.append(rows(0, 2), 100)
    expect(b.count()).toBe(2)
    b.close()
    const check = new Database(join(tmp.dir, 'old.sqlite'))
    expect(check.pragma('page_size', { simple: true })).toBe(4096)
    check.close()
  })

  it('acks exactly the given seqs: an unbroken run by range, a run with another writer\'s rows between as a list', () => {
    const a = store()
    const b = store()
    const a1 = a.append(rows(0, 3), 100).seqs
    const b1 = b.append(rows(3, 2), 100).seqs
    const a2 = a.append(rows(5, 3), 100).seqs
    expect([a1[2]! + 1, b1[1]! + 1]).toEqual([b1[0], a2[0]])
    // b's rows lie between a's two batches: they must stay
    a.ack([...a1, ...a2])
    // each look leases for 1 ms at a clock 10 ms later than the last: every row is free again
    let now = Date.now()
    const ids = () => a.claim(100, 1e9, 1, (now += 10)).map((r) => r.id)
    expect(ids()).toEqual(['id3', 'id4'])
    // an unbroken run with rows right after it: those stay too
    const a3 = a.append(rows(8, 3), 100).seqs
    a.ack(a3.slice(0, 2))
    expect(ids()).toEqual(['id3', 'id4', 'id10'])
    // not ascending: handled as a list
    a.ack([b1[1]!, b1[0]!])
    expect(ids()).toEqual(['id10'])
  })

  it('caps the outbox: drops the oldest and keeps a running total', () => {
    const s = store()
    expect(s.append(rows(0, 5), 3).dropped).toBe(2)
    expect(s.append(rows(5, 2), 3).dropped).toBe(2)
    expect(s.claim(10, 1e9, 1000, 0).map((r) => r.id)).toEqual(['id4', 'id5', 'id6'])
    expect(s.droppedTotal()).toBe(4)
  })

  it('never hands the same row to two owners while a lease holds', () => {
    const a = store()
    const b = store()
    a.append(rows(0, 6), 100)
    const now = Date.now()
    const ca = a.claim(4, 1e9, 60_000, now)
    const cb = b.claim(4, 1e9, 60_000, now)
    expect(ca.map((r) => r.id)).toEqual(['id0', 'id1', 'id2', 'id3'])
    expect(cb.map((r) => r.id)).toEqual(['id4', 'id5'])
    // b cannot release a's rows; a can
    b.release(ca.map((r) => r.seq))
    expect(b.claim(10, 1e9, 60_000, now)).toHaveLength(0)
    a.release(ca.map((r) => r.seq))
    expect(b.claim(10, 1e9, 60_000, now)).toHaveLength(4)
    // an expired lease is free again
    expect(a.claim(10, 1e9, 60_000, now + 61_000)).toHaveLength(6)
  })

  it('rows leased at insert stay with their writer; a dead writer’s leases are freed', () => {
    const s = store()
    const { seqs } = s.append(rows(0, 2), 100, Date.now() + 60_000)
    expect(seqs).toHaveLength(2)
    expect(store().claim(10, 1e9, 60_000, Date.now())).toHaveLength(0)
    // a process that has exited: its pid no longer exists
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString()
    const db = new Database(join(tmp.dir, 'o.sqlite'))
    db.prepare('UPDATE outbox SET lease_owner = ?').run(`${hostname()}:${dead}:abcd1234`)
    db.close()
    const other = store()
    expect(other.releaseDead(Date.now())).toBe(2)
    expect(other.claim(10, 1e9, 60_000, Date.now())).toHaveLength(2)
  })

  it('parks with the reason, lists, and replays', () => {
    const s = store()
    s.append(rows(0, 3), 100)
    const c = s.claim(10, 1e9, 60_000, Date.now())
    s.park([{ seq: c[1]!.seq, code: 'VALIDATION_ERROR', message: 'bad model', status: 400 }], 123)
    expect(s.count()).toBe(2)
    expect(s.listParked(10)).toMatchObject([{ id: 'id1', code: 'VALIDATION_ERROR', message: 'bad model', status: 400, parkedAt: 123, attempts: 1 }])
    expect(s.replayParked([s.listParked(10)[0]!.seq])).toBe(1)
    expect(s.parkedCount()).toBe(0)
    expect(s.count()).toBe(3)
  })

  it('reports a held write lock as busy quickly instead of stalling', () => {
    const s = store()
    const db = new Database(join(tmp.dir, 'o.sqlite'))
    db.prepare('BEGIN IMMEDIATE').run()
    const t = performance.now()
    let err: unknown
    try {
      s.append(rows(0, 1), 100)
    } catch (e) {
      err = e
    }
    expect(performance.now() - t).toBeLessThan(200)
    expect(isBusy(err)).toBe(true)
    db.prepare('ROLLBACK').run()
    db.close()
    expect(s.append(rows(0, 1), 100).seqs).toHaveLength(1)
  })
})
