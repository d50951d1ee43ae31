import { spawnSync } from 'node:child_process'
import { chmodSync, statSync, writeFileSync } from 'node:fs'
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
  it('migrating a file another process holds locked waits for it at open, instead of giving up the outbox', async () => {
    const path = join(tmp.dir, 'v2.sqlite')
    new SqliteStore(path).close()
    // back to version 2, as an SDK before version 3 left it
    const v2 = new Database(path)
    v2.exec('DROP INDEX outbox_live_idx')
    v2.pragma('user_version = 2')
    v2.close()
    // another process's write transaction, 300 ms long
    const { spawn } = await import('node:child_process')
    const holder = spawn(process.execPath, ['-e', `
      const db = new (require('better-sqlite3'))(${JSON.stringify(path)})
      db.exec('BEGIN IMMEDIATE'); process.stdout.write('locked')
      setTimeout(() => { db.exec('COMMIT'); db.close() }, 300)`], { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()))
    const s = new SqliteStore(path)
    open.push(s)
    await new Promise((resolve) => holder.on('exit', resolve))
    const check = new Database(path)
    expect(check.pragma('user_version', { simple: true })).toBe(3)
    check.close()
  })

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

  it('makes a new outbox readable by its owner only: 0700 directories, 0600 files (WAL included)', () => {
    const path = join(tmp.dir, 'deep', 'er', 'o.sqlite')
    const s = new SqliteStore(path)
    open.push(s)
    s.append(rows(0, 2), 100)
    const mode = (p: string) => statSync(p).mode & 0o777
    expect(mode(join(tmp.dir, 'deep'))).toBe(0o700)
    expect(mode(join(tmp.dir, 'deep', 'er'))).toBe(0o700)
    expect(mode(path)).toBe(0o600)
    expect(mode(`${path}-wal`)).toBe(0o600)
    // an existing file keeps the mode its owner gave it
    const shared = join(tmp.dir, 'shared.sqlite')
    writeFileSync(shared, '')
    chmodSync(shared, 0o640)
    open.push(new SqliteStore(shared))
    expect(mode(shared)).toBe(0o640)
  })

  it('refuses a file that is some other database, and leaves it as it was', () => {
    const path = join(tmp.dir, 'app.db')
    const other = new Database(path)
    other.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ann')")
    other.close()
    expect(() => new SqliteStore(path)).toThrow('not an LLMGuard outbox: the file holds other tables (users) and is left as it is')
    const after = new Database(path)
    expect(after.pragma('journal_mode', { simple: true })).toBe('delete')
    expect(after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all()).toEqual(['users'])
    expect(after.prepare('SELECT name FROM users').pluck().all()).toEqual(['ann'])
    after.close()
  })

  it('creates a new file with 4 KB pages and keeps the page size of an existing one', () => {
    const a = store()
    a.close()
    const db = new Database(join(tmp.dir, 'o.sqlite'))
    expect(db.pragma('page_size', { simple: true })).toBe(4096)
    db.close()
    // a file an older SDK created: 16 KB pages, WAL, which cannot change without a VACUUM
    const old = new Database(join(tmp.dir, 'old.sqlite'))
    old.pragma('page_size = 16384')
    old.exec('VACUUM') // writes the page size into an empty file, which a table would otherwise do
    old.pragma('journal_mode = WAL')
    old.close()
    const b = store('old.sqlite')
    b.append(rows(0, 2), 100)
    expect(b.count()).toBe(2)
    b.close()
    const check = new Database(join(tmp.dir, 'old.sqlite'))
    expect(check.pragma('page_size', { simple: true })).toBe(16384)
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
    // three writes: three rows of two records, each leased as a whole
    a.append(rows(0, 2), 100)
    a.append(rows(2, 2), 100)
    a.append(rows(4, 2), 100)
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
    // counted in records: the two records of that write
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

  it('writes one row per write; its records keep their own seqs', () => {
    const s = store()
    const { seqs } = s.append(rows(0, 3), 100)
    const { seqs: next } = s.append(rows(3, 2), 100)
    expect(seqs).toEqual([seqs[0], seqs[0]! + 1, seqs[0]! + 2])
    expect(next[0]).toBe(seqs[2]! + 1)
    const db = new Database(join(tmp.dir, 'o.sqlite'))
    expect(db.prepare('SELECT n, live FROM outbox ORDER BY seq').all()).toEqual([{ n: 3, live: 3 }, { n: 2, live: 2 }])
    expect(db.pragma('user_version', { simple: true })).toBe(3)
    // the records are counted from the index on live, never from the rows and their bodies
    expect(db.prepare('EXPLAIN QUERY PLAN SELECT coalesce(sum(live), 0) AS n FROM outbox').all()).toMatchObject([{ detail: expect.stringContaining('COVERING INDEX outbox_live_idx') }])
    db.close()
    expect(s.count()).toBe(5)
    const c = s.claim(100, 1e9, 60_000, Date.now())
    expect(c.map((r) => [r.seq, r.id, JSON.parse(r.body).n, r.bytes])).toEqual([0, 1, 2, 3, 4].map((i) => [seqs[0]! + i, `id${i}`, i, Buffer.byteLength(JSON.stringify({ n: i }))]))
  })

  it('takes single records out of a row: ack, park and release by record, the rest stays', () => {
    const s = store()
    const { seqs } = s.append(rows(0, 5), 100)
    let now = Date.now()
    const ids = () => s.claim(100, 1e9, 1, (now += 10)).map((r) => r.id)
    // the middle of a row, then its first record
    s.ack([seqs[2]!])
    s.ack([seqs[0]!])
    expect(ids()).toEqual(['id1', 'id3', 'id4'])
    expect(s.count()).toBe(3)
    s.park([{ seq: seqs[3]!, code: 'VALIDATION_ERROR', message: 'bad', status: 400 }], 7)
    expect(s.count()).toBe(2)
    expect(s.listParked(10)).toMatchObject([{ id: 'id3', body: JSON.stringify({ n: 3 }), code: 'VALIDATION_ERROR', parkedAt: 7, attempts: 1 }])
    // parking an emptied line again changes nothing
    s.park([{ seq: seqs[3]!, code: 'X', message: 'x' }], 8)
    expect(s.parkedCount()).toBe(1)
    // the whole row is leased and released together, whichever record is named
    const held = s.claim(100, 1e9, 60_000, (now += 10))
    expect(held.map((r) => r.id)).toEqual(['id1', 'id4'])
    expect(s.claim(100, 1e9, 60_000, now)).toHaveLength(0)
    s.release([seqs[4]!])
    expect(s.claim(100, 1e9, 60_000, now).map((r) => [r.id, r.attempts])).toEqual([['id1', 1], ['id4', 1]])
    // the last records go: so does the row
    s.ack([seqs[1]!, seqs[4]!])
    expect(s.count()).toBe(0)
    const db = new Database(join(tmp.dir, 'o.sqlite'))
    expect(db.prepare('SELECT count(*) AS n FROM outbox').get()).toEqual({ n: 0 })
    db.close()
    expect(s.replayParked()).toBe(1)
    expect(ids()).toEqual(['id3'])
  })

  it('acks a run of seqs that starts and ends inside rows', () => {
    const s = store()
    const a = s.append(rows(0, 3), 100).seqs
    const b = s.append(rows(3, 3), 100).seqs
    const c = s.append(rows(6, 3), 100).seqs
    s.ack([a[2]!, ...b, c[0]!])
    expect(s.claim(100, 1e9, 1, Date.now()).map((r) => r.id)).toEqual(['id0', 'id1', 'id7', 'id8'])
    // and a run strictly inside one row
    const d = s.append(rows(9, 4), 100).seqs
    s.ack([d[1]!, d[2]!])
    expect(s.claim(100, 1e9, 1, Date.now() + 10).map((r) => r.id)).toEqual(['id0', 'id1', 'id7', 'id8', 'id9', 'id12'])
  })

  it('caps by records, cutting into the oldest row when only part of it is over', () => {
    const s = store()
    s.append(rows(0, 4), 100)
    s.append(rows(4, 4), 100)
    expect(s.append(rows(8, 2), 7).dropped).toBe(3)
    expect(s.claim(100, 1e9, 1000, 0).map((r) => r.id)).toEqual(['id3', 'id4', 'id5', 'id6', 'id7', 'id8', 'id9'])
    expect(s.droppedTotal()).toBe(3)
  })

  it('starts a new row where the bodies of one write would pass 4 MB', () => {
    const s = store()
    const big = 'x'.repeat(1_500_000)
    const write = [0, 1, 2, 3].map((i) => ({ id: `big${i}`, body: JSON.stringify({ big, i }), bytes: big.length + 13, createdAt: 0 }))
    const { seqs } = s.append(write, 100)
    expect(seqs).toEqual([seqs[0], seqs[0]! + 1, seqs[0]! + 2, seqs[0]! + 3])
    const db = new Database(join(tmp.dir, 'o.sqlite'))
    expect(db.prepare('SELECT n FROM outbox ORDER BY seq').all()).toEqual([{ n: 2 }, { n: 2 }])
    db.close()
    expect(s.claim(100, 1e9, 1000, 0).map((r) => JSON.parse(r.body).i)).toEqual([0, 1, 2, 3])
  })

  it('reads a version-1 file (one row per record) as it is and migrates it in place', () => {
    const path = join(tmp.dir, 'v1.sqlite')
    const old = new Database(path)
    old.pragma('journal_mode = WAL')
    old.exec(`
      CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, body TEXT NOT NULL, bytes INTEGER NOT NULL,
        created_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, lease_until INTEGER NOT NULL DEFAULT 0, lease_owner TEXT);
      CREATE TABLE dead_letter (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, body TEXT NOT NULL, code TEXT NOT NULL,
        message TEXT NOT NULL, status INTEGER, attempts INTEGER NOT NULL, created_at INTEGER NOT NULL, parked_at INTEGER NOT NULL);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `)
    const ins = old.prepare('INSERT INTO outbox (id, body, bytes, created_at, attempts) VALUES (?, ?, ?, ?, ?)')
    for (const r of rows(0, 3)) ins.run(r.id, r.body, r.bytes, 5, 2)
    old.prepare("INSERT INTO dead_letter (id, body, code, message, status, attempts, created_at, parked_at) VALUES ('p0', '{\"n\":99}', 'VALIDATION_ERROR', 'bad', 400, 1, 5, 6)").run()
    old.prepare("INSERT INTO meta (key, value) VALUES ('dropped_total', '4')").run()
    old.pragma('user_version = 1')
    old.close()

    const s = store('v1.sqlite')
    expect(s.count()).toBe(3)
    expect(s.droppedTotal()).toBe(4)
    expect(s.listParked(10)).toMatchObject([{ id: 'p0', code: 'VALIDATION_ERROR' }])
    const { seqs } = s.append(rows(3, 2), 100)
    const c = s.claim(100, 1e9, 60_000, Date.now())
    expect(c.map((r) => [r.id, r.attempts])).toEqual([['id0', 2], ['id1', 2], ['id2', 2], ['id3', 0], ['id4', 0]])
    // an old row and a new one acked together, and a parked record replayed into the new schema
    s.ack([c[2]!.seq, ...seqs])
    expect(s.replayParked()).toBe(1)
    expect(s.claim(100, 1e9, 60_000, Date.now() + 61_000).map((r) => r.id)).toEqual(['id0', 'id1', 'p0'])
    s.close()
    const check = new Database(path)
    expect(check.pragma('user_version', { simple: true })).toBe(3)
    expect(check.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'outbox_live_idx'").all()).toHaveLength(1)
    check.close()
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
