import { closeSync, mkdirSync, openSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type BetterSqlite3 from 'better-sqlite3'
import { MAX_CHUNK_CHARS, removeLines, seqRuns } from './chunk.js'
import { isBusy, type Appended, type NewRow, type OutboxRow, type OutboxStore, type ParkedRow, type ParkItem } from './store.js'

const SCHEMA_VERSION = 3

/**
 * The outbox holds prompts and responses, which may hold anything an app's users typed: a new
 * outbox is readable by its owner only. Directories made for it get 0700, a new file 0600 (SQLite
 * gives its -wal and -shm files the database file's mode). An existing file or directory keeps
 * the mode its owner chose.
 */
function createPrivately(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  try {
    closeSync(openSync(path, 'wx', 0o600))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
}

/** Version 1: one row per record. */
const SCHEMA_V1 = `
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

/**
 * Version 2: one row per write (see chunk.ts). A version-1 row is a chunk of one record, which
 * is what the defaults give it, so an old file keeps working as it is.
 */
const MIGRATE_V2 = `
ALTER TABLE outbox ADD COLUMN n INTEGER NOT NULL DEFAULT 1;
ALTER TABLE outbox ADD COLUMN live INTEGER NOT NULL DEFAULT 1;
`

/**
 * Version 3: the records a file holds are counted (the cap on every write past it, stats()) from
 * an index on `live` instead of from the rows, whose `live`, added by version 2, comes after the
 * body: reading it walked every row's overflow pages, 50–200 ms a write at a full outbox.
 */
const MIGRATE_V3 = `CREATE INDEX IF NOT EXISTS outbox_live_idx ON outbox (live);`

/** How long opening a file waits for another process's lock while migrating it (once, at start). */
const MIGRATION_BUSY_MS = 5_000

interface ChunkRow {
  seq: number
  n: number
  id: string
  body: string
  attempts: number
  createdAt: number
}

export interface SqliteStoreOptions {
  /**
   * How long a write waits for another process's lock. Waiting is synchronous in better-sqlite3
   * (it stalls the event loop), so it stays short and a busy outbox is retried later instead.
   */
  busyTimeoutMs?: number
  /** Opened only to read (a tool's status): a file this process cannot write is fine then. */
  forReading?: boolean
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

/**
 * The durable outbox: one SQLite file in WAL mode, safe to share between processes. A write puts
 * its records in one row (chunk.ts): one insert per write instead of one per record, which was
 * the largest share of what the SDK cost per call.
 */
export class SqliteStore implements OutboxStore {
  readonly kind = 'sqlite' as const
  private readonly db: BetterSqlite3.Database
  /** Identifies this process's leases: host and pid let another process see that it died. */
  private readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  private readonly stmts: ReturnType<SqliteStore['prepare']>
  private readonly appendTx: BetterSqlite3.Transaction<(rows: readonly NewRow[], maxRows: number, leaseUntil: number) => Appended>
  private readonly claimTx: BetterSqlite3.Transaction<(limit: number, maxBytes: number, leaseMs: number, now: number) => OutboxRow[]>
  private readonly ackTx: BetterSqlite3.Transaction<(seqs: readonly number[]) => void>
  private readonly releaseTx: BetterSqlite3.Transaction<(seqs: readonly number[]) => void>
  private readonly parkTx: BetterSqlite3.Transaction<(items: readonly ParkItem[], now: number) => void>
  private readonly replayTx: BetterSqlite3.Transaction<(seqs?: readonly number[]) => number>
  private readonly addParkedTx: BetterSqlite3.Transaction<(rows: readonly ParkedRow[]) => void>

  constructor(
    readonly path: string,
    options: SqliteStoreOptions = {},
  ) {
    if (path !== ':memory:') createPrivately(path)
    const Database = loadDriver()
    this.db = new Database(path, { timeout: options.busyTimeoutMs ?? 20 })
    try {
      this.init()
      if (!options.forReading) this.probeWrite()
    } catch (err) {
      this.db.close()
      throw err
    }
    this.stmts = this.prepare()
    const s = this.stmts
    this.appendTx = this.db.transaction((rows: readonly NewRow[], maxRows: number, leaseUntil: number) => {
      const owner = leaseUntil > 0 ? this.owner : null
      const seqs = new Array<number>(rows.length)
      let i = 0
      while (i < rows.length) {
        // one row per write, cut where the bodies would grow past MAX_CHUNK_CHARS
        const start = i
        let body = rows[i]!.body
        let ids = rows[i]!.id
        for (i++; i < rows.length && body.length + rows[i]!.body.length < MAX_CHUNK_CHARS; i++) {
          body += '\n' + rows[i]!.body
          ids += '\n' + rows[i]!.id
        }
        const n = i - start
        // counted once for the row (the rows' own bytes may be bounds)
        const seq = Number(s.insert.run(ids, body, Buffer.byteLength(body), rows[start]!.createdAt, leaseUntil, owner, n, n).lastInsertRowid)
        // the next chunk's seqs start after this one's last record (AUTOINCREMENT never reuses them)
        if (n > 1) s.reserveSeqs.run(n - 1)
        for (let k = 0; k < n; k++) seqs[start + k] = seq + k
      }
      // an upper bound read from the b-tree ends; count only when it may be over
      const span = s.span.get() as { n: number | null }
      if ((span.n ?? 0) <= maxRows) return { seqs, dropped: 0 }
      const total = (s.count.get() as { n: number }).n
      if (total <= maxRows) return { seqs, dropped: 0 }
      const { dropped, droppedSeqs, keptFrom } = this.dropOldest(total - maxRows)
      s.addDropped.run(dropped)
      return { seqs, dropped, droppedSeqs, goneRanges: [[0, keptFrom]] }
    })
    this.claimTx = this.db.transaction((limit: number, maxBytes: number, leaseMs: number, now: number) => {
      // whole chunks: a lease is per row. Each chunk holds at least one record, so `limit` rows
      // are enough; the last chunk taken may go past the limits, and the shipper cuts batches
      const out: OutboxRow[] = []
      const taken: number[] = []
      let bytes = 16
      // row by row: a backlog's rows hold hundreds of records each, and the first few fill a batch
      for (const c of s.pending.iterate(now, limit) as IterableIterator<ChunkRow & { attempts: number }>) {
        if (taken.length > 0 && (out.length >= limit || bytes >= maxBytes)) break
        taken.push(c.seq)
        const lines = c.body.split('\n')
        const ids = c.id.split('\n')
        for (let k = 0; k < lines.length; k++) {
          const line = lines[k]!
          if (!line) continue
          const b = Buffer.byteLength(line)
          out.push({ seq: c.seq + k, id: ids[k] ?? '', body: line, bytes: b, attempts: c.attempts })
          bytes += b + 1
        }
      }
      if (taken.length) s.lease.run(now + leaseMs, this.owner, JSON.stringify(taken))
      return out
    })
    this.ackTx = this.db.transaction((seqs: readonly number[]) => {
      for (const [a, b] of seqRuns(seqs)) {
        // a chunk that starts before the run and reaches into it
        const before = s.chunkAt.get(a) as ChunkRow | undefined
        if (before && before.seq < a && before.seq + before.n > a) this.takeOut(before, a, b)
        // a chunk that starts in the run and ends after it
        const after = s.chunkPastRun.get(a, b, b) as ChunkRow | undefined
        if (after) this.takeOut(after, a, b)
        // the usual case: whole chunks, one range delete
        s.ackRun.run(a, b, b)
      }
    })
    this.releaseTx = this.db.transaction((seqs: readonly number[]) => {
      for (const [a, b] of seqRuns(seqs)) {
        const first = s.chunkAt.get(a) as ChunkRow | undefined
        const from = first && first.seq + first.n > a ? first.seq : a
        s.releaseRange.run(from, b, this.owner)
      }
    })
    this.parkTx = this.db.transaction((items: readonly ParkItem[], now: number) => {
      for (const i of items) {
        const c = s.chunkAt.get(i.seq) as ChunkRow | undefined
        if (!c || c.seq + c.n <= i.seq) continue
        const out = this.takeOut(c, i.seq, i.seq)[0]
        if (!out) continue
        const id = c.id.split('\n')[out.index] ?? ''
        s.park.run(id, out.body, i.code, i.message.slice(0, 10_000), i.status ?? null, c.attempts + 1, c.createdAt, now)
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
    this.addParkedTx = this.db.transaction((rows: readonly ParkedRow[]) => {
      for (const r of rows) s.park.run(r.id, r.body, r.code, r.message, r.status, r.attempts, r.parkedAt, r.parkedAt)
    })
  }

  /** Empties the chunk's lines in [from, to] (deleting a chunk left empty); returns what came out. */
  private takeOut(c: ChunkRow, from: number, to: number): { seq: number; index: number; body: string }[] {
    const r = removeLines(c, from, to)
    if (r.removed.length === 0) return r.removed
    if (r.live === 0) this.stmts.deleteChunk.run(c.seq)
    else this.stmts.rewrite.run(r.body, Buffer.byteLength(r.body), r.live, c.seq)
    return r.removed
  }

  /**
   * The cap: drops `over` records, oldest first, whole chunks while they fit in it. Every record
   * before `keptFrom` is gone after it (chunks never overlap, and a chunk goes oldest line first).
   * `droppedSeqs` are the ones this call dropped: records before `keptFrom` that another process
   * had already dropped (or sent) are not among them.
   */
  private dropOldest(over: number): { dropped: number; droppedSeqs: [number, number][]; keptFrom: number } {
    let dropped = 0
    let keptFrom = 0
    const seqs: number[] = []
    const whole: [number, number][] = []
    while (dropped < over) {
      const c = this.stmts.oldest.get() as (ChunkRow & { live: number }) | undefined
      if (!c) break
      if (c.live <= over - dropped) {
        this.stmts.deleteChunk.run(c.seq)
        dropped += c.live
        keptFrom = c.seq + c.n
        // a chunk nothing left early (the usual one) is one run, read without splitting it
        if (c.live === c.n) whole.push([c.seq, c.seq + c.n - 1])
        else removeLines(c, c.seq, c.seq + c.n - 1).removed.forEach((r) => seqs.push(r.seq))
      } else {
        // part of a chunk: its first live lines, whichever seqs they have
        let left = over - dropped
        let to = c.seq
        const lines = c.body.split('\n')
        for (; left > 0 && to < c.seq + c.n; to++) if (lines[to - c.seq]) left--
        const out = this.takeOut(c, c.seq, to - 1)
        for (const r of out) seqs.push(r.seq)
        dropped += out.length
        keptFrom = to
      }
    }
    return { dropped, droppedSeqs: seqs.length ? whole.concat(seqRuns(seqs)) : whole, keptFrom }
  }

  private init(): void {
    // A file that already holds tables of its own and none of ours is some other database (a
    // mistyped path): touching it would switch it to WAL and add our tables, so refuse it first.
    const tables = this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]
    if (tables.length > 0 && !tables.includes('outbox')) {
      throw new Error(`not an LLMGuard outbox: the file holds other tables (${tables.slice(0, 3).join(', ')}${tables.length > 3 ? ', …' : ''}) and is left as it is`)
    }
    // WAL: readers and one writer at a time across processes; NORMAL sync is durable across a
    // process crash (only an OS crash can lose the last transactions)
    // 4 KB pages for a new file (an existing one keeps its size). With a write's records in one
    // row, a commit rewrites the last leaf, the row's overflow pages and the sequence page: at
    // ~40 records a write (a call every ~1 ms, 50 ms ticks) 4 KB pages cost ~30 % less CPU per
    // record than the 16 KB ones that suited one row per record, and far less for slow writers
    // (one record a write: ~2x); only bursts of hundreds of records a write favour 16 KB
    this.db.pragma('page_size = 4096')
    this.db.pragma('journal_mode = WAL')
    // checkpoint at ~4 MB of WAL whatever the page size, as with SQLite's default of 1,000 4 KB
    // pages: a checkpoint runs inside a commit, so its size is an event-loop stall
    const pageSize = this.db.pragma('page_size', { simple: true }) as number
    this.db.pragma(`wal_autocheckpoint = ${Math.max(1, Math.round((4096 * 1000) / pageSize))}`)
    this.db.pragma('synchronous = NORMAL')
    const version = () => this.db.pragma('user_version', { simple: true }) as number
    const migrate = (to: number) =>
      this.db.transaction(() => {
        // read again under the write lock: another process may have just migrated the file
        const v = version()
        if (v < 1) this.db.exec(SCHEMA_V1)
        if (v < 2 && to >= 2) this.db.exec(MIGRATE_V2)
        if (v < 3 && to >= 3) this.db.exec(MIGRATE_V3)
        if (v < to) this.db.pragma(`user_version = ${to}`)
      })
    if (version() >= SCHEMA_VERSION) return
    // another process migrating the same file at the same moment (several workers starting
    // together, each building the same index on a backlog), or writing to it: waited for, once,
    // at start, instead of the writes' short timeout
    const timeout = this.db.pragma('busy_timeout', { simple: true }) as number
    this.db.pragma(`busy_timeout = ${MIGRATION_BUSY_MS}`)
    try {
      // up to version 2 the file cannot be used without it
      if (version() < 2) migrate(2).immediate()
      try {
        migrate(SCHEMA_VERSION).immediate()
      } catch (err) {
        // version 3 only speeds a full outbox up: still locked, the next start adds it
        if (!isBusy(err)) throw err
      }
    } finally {
      this.db.pragma(`busy_timeout = ${timeout}`)
    }
  }

  /**
   * SQLite opens a file this process may read but not write (another user's, a read-only mount)
   * read-only without a word, and every write then fails: refused here, so the guard keeps
   * records in memory and ships them instead of dropping each one. A write rolled back; a file
   * another process is writing (busy) is writable by someone and taken as it is.
   */
  private probeWrite(): void {
    try {
      this.db.exec('BEGIN IMMEDIATE')
    } catch (err) {
      if (isBusy(err)) return
      throw err
    }
    try {
      this.db.exec("INSERT INTO meta (key, value) VALUES ('write_probe', '') ON CONFLICT (key) DO NOTHING")
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('SQLITE_READONLY')) throw new Error('the file is read-only for this process')
      throw err
    } finally {
      if (this.db.inTransaction) this.db.exec('ROLLBACK')
    }
  }

  private prepare() {
    const db = this.db
    return {
      insert: db.prepare('INSERT INTO outbox (id, body, bytes, created_at, lease_until, lease_owner, n, live) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      reserveSeqs: db.prepare("UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'outbox'"),
      leaseOwners: db.prepare('SELECT DISTINCT lease_owner AS owner FROM outbox WHERE lease_until > ? AND lease_owner IS NOT NULL AND lease_owner <> ?'),
      freeOwner: db.prepare('UPDATE outbox SET lease_until = 0, lease_owner = NULL WHERE lease_owner = ? RETURNING live'),
      span: db.prepare('SELECT (SELECT seq + n FROM outbox ORDER BY seq DESC LIMIT 1) - (SELECT seq FROM outbox ORDER BY seq LIMIT 1) AS n'),
      count: db.prepare('SELECT coalesce(sum(live), 0) AS n FROM outbox'),
      oldest: db.prepare('SELECT seq, n, id, body, live, attempts, created_at AS createdAt FROM outbox ORDER BY seq LIMIT 1'),
      pending: db.prepare('SELECT seq, n, id, body, attempts FROM outbox WHERE lease_until <= ? ORDER BY seq LIMIT ?'),
      lease: db.prepare('UPDATE outbox SET lease_until = ?, lease_owner = ? WHERE seq IN (SELECT value FROM json_each(?))'),
      /** The chunk holding seq, if any: the last one starting at or before it (check its end). */
      chunkAt: db.prepare('SELECT seq, n, id, body, attempts, created_at AS createdAt FROM outbox WHERE seq <= ? ORDER BY seq DESC LIMIT 1'),
      chunkPastRun: db.prepare('SELECT seq, n, id, body, attempts, created_at AS createdAt FROM outbox WHERE seq BETWEEN ? AND ? AND seq + n - 1 > ?'),
      ackRun: db.prepare('DELETE FROM outbox WHERE seq BETWEEN ? AND ? AND seq + n - 1 <= ?'),
      deleteChunk: db.prepare('DELETE FROM outbox WHERE seq = ?'),
      rewrite: db.prepare('UPDATE outbox SET body = ?, bytes = ?, live = ? WHERE seq = ?'),
      releaseRange: db.prepare('UPDATE outbox SET lease_until = 0, lease_owner = NULL, attempts = attempts + 1 WHERE seq BETWEEN ? AND ? AND lease_owner = ?'),
      park: db.prepare('INSERT INTO dead_letter (id, body, code, message, status, attempts, created_at, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      addDropped: db.prepare(
        "INSERT INTO meta (key, value) VALUES ('dropped_total', ?) ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
      ),
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

  append(rows: readonly NewRow[], maxRows: number, leaseUntil = 0): Appended {
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
      for (const r of this.stmts.freeOwner.all(owner) as { live: number }[]) freed += r.live
    }
    return freed
  }

  claim(limit: number, maxBytes: number, leaseMs: number, now: number): OutboxRow[] {
    return this.claimTx.immediate(limit, maxBytes, leaseMs, now)
  }

  /** Records leave their chunks; a chunk goes with its last record. */
  ack(seqs: readonly number[]): void {
    if (seqs.length) this.ackTx.immediate(seqs)
  }

  /** Frees the chunks holding these records (only this process's leases). */
  release(seqs: readonly number[]): void {
    if (seqs.length) this.releaseTx.immediate(seqs)
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

  /** Adds rows parked elsewhere (in memory, while this file failed) to the dead-letter table, in one transaction. */
  addParked(rows: readonly ParkedRow[]): void {
    if (rows.length) this.addParkedTx.immediate(rows)
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
