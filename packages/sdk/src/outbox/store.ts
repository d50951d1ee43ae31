import { seqRuns } from './chunk.js'

/** One queued record as the shipper sees it. */
export interface OutboxRow {
  seq: number
  id: string
  body: string
  bytes: number
  attempts: number
}

export interface NewRow {
  id: string
  body: string
  /** UTF-8 bytes, or a bound on them (the writer does not count small records exactly). */
  bytes: number
  createdAt: number
}

/** A record the collector refused for good, kept with the reason so it can be shown and replayed. */
export interface ParkedRow {
  seq: number
  id: string
  body: string
  code: string
  message: string
  status: number | null
  attempts: number
  parkedAt: number
}

export interface ParkItem {
  seq: number
  code: string
  message: string
  status?: number
}

export interface Appended {
  seqs: number[]
  /** Records the cap dropped, counted by this call: another process's drop is its own to count. */
  dropped: number
  /** With any dropped: the seqs this call dropped, as runs [first, last]. */
  droppedSeqs?: [number, number][]
  /**
   * With any dropped: half-open ranges [from, to) in which no record is left, whoever dropped it
   * (another process's cap too). The shipper sends none it holds there.
   */
  goneRanges?: [number, number][]
}

/**
 * The outbox: records wait here until the collector has accepted them. The SQLite store is the
 * durable one; the memory store is the fallback when SQLite cannot be opened.
 */
export interface OutboxStore {
  readonly kind: 'sqlite' | 'memory'
  readonly path: string | null
  /**
   * Appends rows and drops the oldest past `maxRows`. With `leaseUntil`, the rows start leased
   * to this process, which ships them from memory without reading them back. Returns their
   * seqs and how many old rows were dropped. Throws a busy error to try later.
   */
  append(rows: readonly NewRow[], maxRows: number, leaseUntil?: number): Appended
  /** Frees the leases of processes on this host that no longer run (killed mid-send). */
  releaseDead(now: number): number
  /**
   * Leases records nobody else holds, oldest first, about `limit` of them or `maxBytes`: a store
   * that leases several records together (the SQLite one leases a write's records as one row)
   * returns all of them, so there may be more. A lease that outlives a crashed process expires,
   * so its records ship from another one (the collector dedupes by id).
   */
  claim(limit: number, maxBytes: number, leaseMs: number, now: number): OutboxRow[]
  /** The collector has them: gone for good. */
  ack(seqs: readonly number[]): void
  /** Back to the queue for a later try, with whatever was leased together with them. */
  release(seqs: readonly number[]): void
  /** Moves rows to the dead-letter table. */
  park(items: readonly ParkItem[], now: number): void
  count(): number
  parkedCount(): number
  listParked(limit: number): ParkedRow[]
  /** Moves parked rows (all, or the given ones) back to the outbox; returns how many. */
  replayParked(seqs?: readonly number[]): number
  /** Records dropped by the size cap over the file's life. */
  droppedTotal(): number
  /**
   * Set while records the file could not take wait in memory (FallbackStore): when to try the
   * file again. The writer tries then even with no new records, to move them back.
   */
  readonly retryAt?: number
  /**
   * At shutdown: moves what memory holds for a failed file (records, and records parked there) to
   * it, a few ms of it a call unless `final`. `dropped` counts what the cap dropped and, when
   * `final`, what could not be saved by `deadline` (then memory is empty). A lock stops it
   * without a loss: `left` says how many records still wait.
   */
  saveSpilled?(maxRows: number, final: boolean, deadline?: number): Appended & { left: number }
  /** Queued records held in memory because the file refused a write: 0 while it takes them. */
  readonly spilled?: number
  getMeta(key: string): string | undefined
  setMeta(key: string, value: string): void
  close(): void
}

/** better-sqlite3 reports a held lock as SQLITE_BUSY (or one of its extended codes). */
export function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
}

/**
 * Keeps records in this process only: used when SQLite is unavailable, and by FallbackStore for
 * the records a failed file could not take. Nothing survives a restart. Maps keep insertion (seq)
 * order and remove a record in O(1): a backlog of 100k records is acked 100 at a time, and a
 * filter over all of them on each ack would be quadratic.
 */
export class MemoryStore implements OutboxStore {
  readonly kind = 'memory' as const
  readonly path = null
  private rows = new Map<number, OutboxRow & { leaseUntil: number }>()
  private parked = new Map<number, ParkedRow>()
  private meta = new Map<string, string>()
  private seq: number
  private dropped = 0

  /** Seqs start after `firstSeq`, so that another store's seqs can be told apart (FallbackStore). */
  constructor(private readonly firstSeq = 0) {
    this.seq = firstSeq
  }

  append(rows: readonly NewRow[], maxRows: number, leaseUntil = 0): Appended {
    const seqs: number[] = []
    for (const r of rows) {
      seqs.push(++this.seq)
      this.rows.set(this.seq, { seq: this.seq, id: r.id, body: r.body, bytes: r.bytes, attempts: 0, leaseUntil })
    }
    const over = this.rows.size - maxRows
    if (over <= 0) return { seqs, dropped: 0 }
    const gone = this.removeOldest(over)
    this.dropped += over
    // rows are in seq order: every one before the first kept is gone
    return { seqs, dropped: over, droppedSeqs: seqRuns(gone), goneRanges: [[this.firstSeq, this.firstRow()?.seq ?? this.seq + 1]] }
  }

  private firstRow(): OutboxRow | undefined {
    for (const r of this.rows.values()) return r
    return undefined
  }

  /** Removes the `n` oldest records, whoever holds them; returns their seqs. */
  removeOldest(n: number): number[] {
    const gone: number[] = []
    for (const seq of this.rows.keys()) {
      if (gone.length >= n) break
      gone.push(seq)
    }
    for (const seq of gone) this.rows.delete(seq)
    return gone
  }

  releaseDead(): number {
    return 0
  }

  claim(limit: number, maxBytes: number, leaseMs: number, now: number): OutboxRow[] {
    const out: OutboxRow[] = []
    let bytes = 0
    for (const r of this.rows.values()) {
      if (out.length >= limit || (out.length > 0 && bytes + r.bytes > maxBytes)) break
      if (r.leaseUntil > now) continue
      r.leaseUntil = now + leaseMs
      bytes += r.bytes
      out.push({ seq: r.seq, id: r.id, body: r.body, bytes: r.bytes, attempts: r.attempts })
    }
    return out
  }

  ack(seqs: readonly number[]): void {
    for (const s of seqs) this.rows.delete(s)
  }

  release(seqs: readonly number[]): void {
    for (const s of seqs) {
      const r = this.rows.get(s)
      if (!r) continue
      r.leaseUntil = 0
      r.attempts++
    }
  }

  park(items: readonly ParkItem[], now: number): void {
    for (const p of items) {
      const r = this.rows.get(p.seq)
      if (!r) continue
      this.rows.delete(p.seq)
      const seq = ++this.seq
      this.parked.set(seq, { seq, id: r.id, body: r.body, code: p.code, message: p.message, status: p.status ?? null, attempts: r.attempts + 1, parkedAt: now })
    }
  }

  count(): number {
    return this.rows.size
  }
  /** Whether a record waits that nobody is sending. */
  hasUnleased(now: number): boolean {
    for (const r of this.rows.values()) if (r.leaseUntil <= now) return true
    return false
  }
  /** Removes parked rows (FallbackStore moved them to the file). */
  removeParked(seqs: readonly number[]): void {
    for (const s of seqs) this.parked.delete(s)
  }
  parkedCount(): number {
    return this.parked.size
  }
  listParked(limit: number): ParkedRow[] {
    const out: ParkedRow[] = []
    for (const p of this.parked.values()) {
      if (out.length >= limit) break
      out.push(p)
    }
    return out
  }
  replayParked(seqs?: readonly number[]): number {
    const back = seqs ? [...new Set(seqs)].sort((a, b) => a - b).flatMap((s) => this.parked.get(s) ?? []) : [...this.parked.values()]
    for (const p of back) {
      this.parked.delete(p.seq)
      const seq = ++this.seq
      this.rows.set(seq, { seq, id: p.id, body: p.body, bytes: Buffer.byteLength(p.body), attempts: 0, leaseUntil: 0 })
    }
    return back.length
  }
  droppedTotal(): number {
    return this.dropped
  }
  getMeta(key: string): string | undefined {
    return this.meta.get(key)
  }
  setMeta(key: string, value: string): void {
    this.meta.set(key, value)
  }
  close(): void {}
}
