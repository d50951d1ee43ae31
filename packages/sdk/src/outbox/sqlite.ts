import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type BetterSqlite3 from 'better-sqlite3'
import { takeBatch } from '../ship/batch.js'
import type { NewRow, OutboxRow, OutboxStore, ParkedRow, ParkItem } from './store.js'

const SCHEMA_VERSION = 1

const SCHEMA = `
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL,
  body TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER NOT NULL DEFAULT 0,
  lease_owner TEXT
);
CREATE TABLE IF NOT EXISTS dead_letter (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL,
  body TEXT NOT NULL,
  code TEXT NOT NULL,
  message TEXT NOT NULL,
  status INTEGER,
  attempts INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  parked_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`

export interface SqliteStoreOptions {
  /**
   * How long a write waits for another process's lock. Waiting is synchronous in better-sqlite3
   * (it stalls the event loop), so it stays short and a busy outbox is retried later instead.
   */
  busyTimeoutMs?: number
}

/**
 * Loads better-sqlite3 lazily, so a missing or broken native module surfaces here (and the
 * guard falls back to memory) instead of failing the app's import of the SDK.
 */
function loadDriver(): typeof BetterSqlite3 {
  const require = createRequire(import.meta.url)
  return require('better-sqlite3') as typeof BetterSqlite3
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: alive, another user's. Only "no such process" frees the lease
    return (err as { code?: string }).code !== 'ESRCH'
  }
}

/** Strictly ascending: with the first and last a run's ends, the seqs are exactly that run. */
function isAscending(seqs: readonly number[]): boolean {
  for (let i = 1; i < seqs.length; i++) if (!(seqs[i]! > seqs[i - 1]!)) return false
  return true
}

/** The durable outbox: one SQLite file in WAL mode, safe to share between processes. */
export class SqliteStore implements OutboxStore {
  readonly kind = 'sqlite' as const
  private readonly db: BetterSqlite3.Database
  /** Identifies this process's leases: host and pid let another process see that it died. */
  private readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  private readonly stmts: ReturnType<SqliteStore['prepare']>
  private readonly appendTx: BetterSqlite3.Transaction<(rows: readonly NewRow[], maxRows: number, leaseUntil: number) => { seqs: number[]; dropped: number }>
  private readonly claimTx: BetterSqlite3.Transaction<(limit: number, maxBytes: number, leaseMs: number, now: number) => OutboxRow[]>
  private readonly parkTx: BetterSqlite3.Transaction<(items: readonly ParkItem[], now: number) => void>
  private readonly replayTx: BetterSqlite3.Transaction<(seqs?: readonly number[]) => number>

  constructor(
    readonly path: string,
    options: SqliteStoreOptions = {},
  ) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    const Database = loadDriver()
    this.db = new Database(path, { timeout: options.busyTimeoutMs ?? 20 })
    try {
      this.init()
    } catch (err) {
      this.db.close()
      throw err
    }
    this.stmts = this.prepare()
    const s = this.stmts
    this.appendTx = this.db.transaction((rows: readonly NewRow[], maxRows: number, leaseUntil: number) => {
      const owner = leaseUntil > 0 ? this.owner : null
      const seqs = new Array<number>(rows.length)
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]!
        seqs[i] = Number(s.insert.run(r.id, r.body, r.bytes, r.createdAt, leaseUntil, owner).lastInsertRowid)
      }
      // max-min is an upper bound read from the b-tree ends; count only when it may be over
      const span = s.span.get() as { n: number | null }
      if ((span.n ?? 0) <= maxRows) return { seqs, dropped: 0 }
      const n = (s.count.get() as { n: number }).n
      if (n <= maxRows) return { seqs, dropped: 0 }
      const dropped = s.dropOldest.run(n - maxRows).changes
      s.addDropped.run(dropped)
      return { seqs, dropped }
    })
    this.claimTx = this.db.transaction((limit: number, maxBytes: number, leaseMs: number, now: number) => {
      const rows = takeBatch(s.pending.all(now, limit) as OutboxRow[], limit, maxBytes)
      if (rows.length) s.lease.run(now + leaseMs, this.owner, JSON.stringify(rows.map((r) => r.seq)))
      return rows
    })
    this.parkTx = this.db.transaction((items: readonly ParkItem[], now: number) => {
      for (const i of items) {
        if (s.parkOne.run(i.code, i.message.slice(0, 10_000), i.status ?? null, now, i.seq).changes) s.deleteOne.run(i.seq)
      }
    })
    this.replayTx = this.db.transaction((seqs?: readonly number[]) => {
      if (!seqs) {
        const n = s.replayAll.run(Date.now()).changes
        s.clearParked.run()
        return n
      }
      const json = JSON.stringify(seqs)
      const n = s.replaySome.run(Date.now(), json).changes
      s.deleteParked.run(json)
      return n
    })
  }

  private init(): void {
    // WAL: readers and one writer at a time across processes; NORMAL sync is durable across a
    // process crash (only an OS crash can lose the last transactions)
    // 16 KB pages for a new file (an existing one keeps its size): a batch of ~600-byte records
    // then costs about half the WAL write() calls per record (strace-counted; each frame is two)
    this.db.pragma('page_size = 16384')
    this.db.pragma('journal_mode = WAL')
    // checkpoint at ~4 MB of WAL whatever the page size, as with SQLite's default of 1,000 4 KB
    // pages: a checkpoint runs inside a commit, so its size is an event-loop stall
    const pageSize = this.db.pragma('page_size', { simple: true }) as number
    this.db.pragma(`wal_autocheckpoint = ${Math.max(1, Math.round((4096 * 1000) / pageSize))}`)
    this.db.pragma('synchronous = NORMAL')
    const version = this.db.pragma('user_version', { simple: true }) as number
    if (version < SCHEMA_VERSION) {
      this.db.transaction(() => {
        this.db.exec(SCHEMA)
        this.db.pragma(`user_version = ${SCHEMA_VERSION}`)
      }).immediate()
    }
  }

  private prepare() {
    const db = this.db
    return {
      insert: db.prepare('INSERT INTO outbox (id, body, bytes, created_at, lease_until, lease_owner) VALUES (?, ?, ?, ?, ?, ?)'),
      leaseOwners: db.prepare('SELECT DISTINCT lease_owner AS owner FROM outbox WHERE lease_until > ? AND lease_owner IS NOT NULL AND lease_owner <> ?'),
      freeOwner: db.prepare('UPDATE outbox SET lease_until = 0, lease_owner = NULL WHERE lease_owner = ?'),
      span: db.prepare('SELECT max(seq) - min(seq) + 1 AS n FROM outbox'),
      count: db.prepare('SELECT count(*) AS n FROM outbox'),
      dropOldest: db.prepare('DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)'),
      addDropped: db.prepare(
        "INSERT INTO meta (key, value) VALUES ('dropped_total', ?) ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
      ),
      pending: db.prepare('SELECT seq, id, body, bytes, attempts FROM outbox WHERE lease_until <= ? ORDER BY seq LIMIT ?'),
      lease: db.prepare('UPDATE outbox SET lease_until = ?, lease_owner = ? WHERE seq IN (SELECT value FROM json_each(?))'),
      ack: db.prepare('DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))'),
      ackRange: db.prepare('DELETE FROM outbox WHERE seq BETWEEN ? AND ?'),
      release: db.prepare(
        'UPDATE outbox SET lease_until = 0, lease_owner = NULL, attempts = attempts + 1 WHERE seq IN (SELECT value FROM json_each(?)) AND lease_owner = ?',
      ),
      parkOne: db.prepare(
        'INSERT INTO dead_letter (id, body, code, message, status, attempts, created_at, parked_at) SELECT id, body, ?, ?, ?, attempts + 1, created_at, ? FROM outbox WHERE seq = ?',
      ),
      deleteOne: db.prepare('DELETE FROM outbox WHERE seq = ?'),
      parkedCount: db.prepare('SELECT count(*) AS n FROM dead_letter'),
      listParked: db.prepare(
        'SELECT seq, id, body, code, message, status, attempts, parked_at AS parkedAt FROM dead_letter ORDER BY seq LIMIT ?',
      ),
      replayAll: db.prepare('INSERT INTO outbox (id, body, bytes, created_at) SELECT id, body, length(CAST(body AS BLOB)), ? FROM dead_letter ORDER BY seq'),
      clearParked: db.prepare('DELETE FROM dead_letter'),
      replaySome: db.prepare(
        'INSERT INTO outbox (id, body, bytes, created_at) SELECT id, body, length(CAST(body AS BLOB)), ? FROM dead_letter WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY seq',
      ),
      deleteParked: db.prepare('DELETE FROM dead_letter WHERE seq IN (SELECT value FROM json_each(?))'),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    }
  }

  append(rows: readonly NewRow[], maxRows: number, leaseUntil = 0): { seqs: number[]; dropped: number } {
    if (rows.length === 0) return { seqs: [], dropped: 0 }
    // IMMEDIATE takes the write lock up front, so a busy file fails fast instead of mid-way
    return this.appendTx.immediate(rows, maxRows, leaseUntil)
  }

  releaseDead(now: number): number {
    const host = hostname()
    let freed = 0
    for (const { owner } of this.stmts.leaseOwners.all(now, this.owner) as { owner: string }[]) {
      const [h, pid] = owner.split(':')
      if (h !== host || !pid || isAlive(Number(pid))) continue
      freed += this.stmts.freeOwner.run(owner).changes
    }
    return freed
  }

  claim(limit: number, maxBytes: number, leaseMs: number, now: number): OutboxRow[] {
    return this.claimTx.immediate(limit, maxBytes, leaseMs, now)
  }

  ack(seqs: readonly number[]): void {
    if (seqs.length === 0) return
    // a batch this process wrote is usually one unbroken run of seqs: deleting the range walks
    // the b-tree once instead of looking up every seq from a JSON list
    const first = seqs[0]!
    const last = seqs[seqs.length - 1]!
    if (last - first + 1 === seqs.length && isAscending(seqs)) this.stmts.ackRange.run(first, last)
    else this.stmts.ack.run(JSON.stringify(seqs))
  }

  release(seqs: readonly number[]): void {
    if (seqs.length) this.stmts.release.run(JSON.stringify(seqs), this.owner)
  }

  park(items: readonly ParkItem[], now: number): void {
    if (items.length) this.parkTx.immediate(items, now)
  }

  count(): number {
    return (this.stmts.count.get() as { n: number }).n
  }

  parkedCount(): number {
    return (this.stmts.parkedCount.get() as { n: number }).n
  }

  listParked(limit: number): ParkedRow[] {
    return this.stmts.listParked.all(limit) as ParkedRow[]
  }

  replayParked(seqs?: readonly number[]): number {
    return this.replayTx.immediate(seqs)
  }

  droppedTotal(): number {
    return Number(this.getMeta('dropped_total') ?? 0)
  }

  getMeta(key: string): string | undefined {
    return (this.stmts.getMeta.get(key) as { value: string } | undefined)?.value
  }

  setMeta(key: string, value: string): void {
    this.stmts.setMeta.run(key, value)
  }

  close(): void {
    if (this.db.open) this.db.close()
  }
}
