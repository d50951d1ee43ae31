import { performance } from 'node:perf_hooks'
import { backoffDelay } from '../ship/backoff.js'
import { seqRuns } from './chunk.js'
import type { SqliteStore } from './sqlite.js'
import { isBusy, MemoryStore, type Appended, type NewRow, type OutboxRow, type OutboxStore, type ParkedRow, type ParkItem } from './store.js'

/**
 * The memory's seqs start here, far past any the file's AUTOINCREMENT reaches, so a seq alone
 * says which store holds its record.
 */
export const MEMORY_SEQS = 2 ** 52

/**
 * Records moved back to the file per transaction, and their bytes: on a nearly full disk what
 * fits is saved, and a backlog goes back in short transactions, not one long stall.
 */
const MOVE_BACK_ROWS = 100
const MOVE_BACK_BYTES = 256 * 1024

/** How often memory is looked at again for records a send has let go of since, to move them back. */
const MOVE_BACK_MS = 1_000

/**
 * What one try moves back at most: a backlog of 100k records goes back in steps of a few ms with
 * the app's I/O between them, not in one stall that grows with it (seconds at 100k).
 */
const MOVE_BACK_STEP_ROWS = 500
const MOVE_BACK_STEP_MS = 10

/** A step that left records to move: the next one comes this soon. */
const MOVE_BACK_NEXT_MS = 5

/** How long the file's count serves memory's share of the cap: other processes change it too. */
const COUNT_TTL_MS = 1_000

/** How much one moveBack() may do: records, and until when (performance.now()). At least one transaction. */
interface Budget {
  rows: number
  until: number
}

const step = (): Budget => ({ rows: MOVE_BACK_STEP_ROWS, until: performance.now() + MOVE_BACK_STEP_MS })

const inMemory = (seq: number) => seq >= MEMORY_SEQS

function split<T>(items: readonly T[], seqOf: (item: T) => number): [memory: T[], file: T[]] {
  const memory: T[] = []
  const file: T[] = []
  for (const i of items) (inMemory(seqOf(i)) ? memory : file).push(i)
  return [memory, file]
}

const asNew = (rows: readonly OutboxRow[], now: number): NewRow[] => rows.map((r) => ({ id: r.id, body: r.body, bytes: r.bytes, createdAt: now }))

const nothing = (): Appended => ({ seqs: [], dropped: 0 })

/** Several writes as one: the seqs are the last one's (the new records'), the drops add up. */
function merge(a: Appended, b: Appended): Appended {
  if (!a.dropped && !a.goneRanges) return b
  return {
    seqs: b.seqs,
    dropped: a.dropped + b.dropped,
    droppedSeqs: (a.droppedSeqs ?? []).concat(b.droppedSeqs ?? []),
    goneRanges: (a.goneRanges ?? []).concat(b.goneRanges ?? []),
  }
}

/** The SQLite store, which can also take rows parked elsewhere. */
type FileStore = OutboxStore & Pick<SqliteStore, 'addParked'>

/**
 * The SQLite outbox, with memory to fall back on when a write fails for another reason than a
 * lock (a full disk, an I/O error, the file made read-only underneath): the records go to
 * memory and ship from there; the file is tried again with a backoff, not on every write. A try
 * first moves back what memory holds and nobody is sending (older than the new records, so the
 * cap still drops the oldest first), in short transactions, then writes the new records; only a
 * try that moved everything ends the backoff. Records refused by the collector meanwhile go to
 * the file's dead-letter table the same way. The cap holds for both together: while the file
 * fails its records cannot be dropped, so memory keeps what the file leaves of it. What the
 * file already held stays in it, for this process or a later one.
 */
export class FallbackStore implements OutboxStore {
  readonly kind = 'sqlite' as const
  private readonly memory = new MemoryStore(MEMORY_SEQS)
  private failures = 0
  /** While writes to the file fail: when to try it again. Writes before then go to memory. */
  private failedUntil: number | undefined
  /** The last try at the file: records a send let go of since then wait for the next one. */
  private triedAt = 0
  /**
   * The file's records when last counted, kept up to date with what this process appends, acks
   * and parks there: memory's share of the cap is what they leave. Counting (a SUM over an index,
   * ms at 100k rows) on every write that goes to memory would slow each call on a full disk.
   */
  private fileCount = 0
  private countedAt = -Infinity
  /** The last try moved back what its budget allowed and records still wait: the next comes soon. */
  private more = false
  /** Closed: a failing call is no write failure (no backoff, no warning). */
  private closed = false

  constructor(
    readonly file: FileStore,
    /** Every failed write to the file (the guard warns once). */
    private readonly onFailure: (err: unknown) => void,
    private readonly random: () => number = Math.random,
  ) {}

  get path(): string | null {
    return this.file.path
  }

  /** While memory holds records (or parked ones): when to try the file again, to move them back (the writer does, new records or not). */
  get retryAt(): number | undefined {
    if (this.memory.count() === 0 && this.memory.parkedCount() === 0) return undefined
    if (this.more && this.failedUntil === undefined) return this.triedAt + MOVE_BACK_NEXT_MS
    return Math.max(this.failedUntil ?? 0, this.triedAt + MOVE_BACK_MS)
  }

  /** Records held in memory because the file could not take them. */
  get spilled(): number {
    return this.memory.count()
  }

  /** Whether a write goes to the file now, or to memory, behind the records waiting there. */
  private fileTurn(now: number): boolean {
    if (this.failedUntil !== undefined) return now >= this.failedUntil
    if (this.more) return now >= this.triedAt + MOVE_BACK_NEXT_MS
    return now >= this.triedAt + MOVE_BACK_MS || !this.memory.hasUnleased(now)
  }

  append(rows: readonly NewRow[], maxRows: number, leaseUntil = 0): Appended {
    const now = Date.now()
    if (!this.fileTurn(now)) return this.toMemory(rows, maxRows, leaseUntil)
    this.triedAt = now
    const back = this.moveBack(maxRows, now, false, step())
    if (back.err) {
      // a lock before anything moved: the caller keeps the new records and tries again
      if (isBusy(back.err) && back.moved === 0) throw back.err
      return merge(back.res, this.toMemory(rows, maxRows, leaseUntil))
    }
    if (back.more) {
      // the file works, but older records still wait in memory: the new ones wait behind them
      this.recovered()
      return merge(back.res, this.toMemory(rows, maxRows, leaseUntil))
    }
    let res: Appended
    try {
      res = this.fileAppend(rows, maxRows, leaseUntil)
    } catch (err) {
      if (isBusy(err) && back.moved === 0) throw err
      if (!isBusy(err)) this.failed(err, now)
      return merge(back.res, this.toMemory(rows, maxRows, leaseUntil))
    }
    // the file took records, and memory holds none waiting for it
    if (rows.length > 0 || back.moved > 0) this.recovered()
    return merge(back.res, res)
  }

  private toMemory(rows: readonly NewRow[], maxRows: number, leaseUntil: number): Appended {
    if (rows.length === 0) return nothing()
    const now = Date.now()
    if (now - this.countedAt >= COUNT_TTL_MS) {
      try {
        this.fileCount = this.file.count()
        this.countedAt = now
      } catch {
        // unreadable too: the last count
      }
    }
    return this.memory.append(rows, Math.max(0, maxRows - this.fileCount), leaseUntil)
  }

  /** The file's append, its count kept: what this call added less what its cap dropped. */
  private fileAppend(rows: readonly NewRow[], maxRows: number, leaseUntil?: number): Appended {
    const res = this.file.append(rows, maxRows, leaseUntil)
    this.fileCount = Math.max(0, this.fileCount + rows.length - res.dropped)
    return res
  }

  /**
   * Moves records memory holds and nobody is sending (a failed send released them, or nothing
   * ships) back to the file, oldest first, then the ones parked in memory: they are safer
   * there. The ones being sent stay, so none is sent twice; `all` takes them too (shutdown).
   * Stops at the first failure, keeping what moved, or once the budget is spent: `more` says
   * records still wait (the caller comes back soon).
   */
  /** Whether memory still holds records a move back would take (or parked ones). */
  private waiting(now: number, all: boolean): boolean {
    if (this.memory.parkedCount() > 0) return true
    return all ? this.memory.count() > 0 : this.memory.hasUnleased(now)
  }

  private moveBack(maxRows: number, now: number, all: boolean, budget: Budget): { res: Appended; moved: number; more: boolean; err?: unknown } {
    let res = nothing()
    let moved = 0
    const spent = () => moved >= budget.rows || performance.now() >= budget.until
    this.more = false
    try {
      for (;;) {
        // `more` only when something is left to move: a step that took the last records says the
        // file is free again, so the caller's new records go to it, not to memory
        if (moved > 0 && spent()) return { res, moved, more: (this.more = this.waiting(now, all)) }
        // a lease never outlasts Infinity: with `all`, every record, whoever holds it
        const rows = all ? this.memory.claim(MOVE_BACK_ROWS, MOVE_BACK_BYTES, 0, Infinity) : this.memory.claim(MOVE_BACK_ROWS, MOVE_BACK_BYTES, 60_000, now)
        if (rows.length === 0) break
        const seqs = rows.map((r) => r.seq)
        try {
          res = merge(res, this.fileAppend(asNew(rows, now), maxRows))
        } catch (err) {
          this.memory.release(seqs)
          throw err
        }
        this.memory.ack(seqs)
        moved += rows.length
      }
      for (;;) {
        if (moved > 0 && spent()) return { res, moved, more: (this.more = this.memory.parkedCount() > 0) }
        const parked = this.memory.listParked(MOVE_BACK_ROWS)
        if (parked.length === 0) break
        this.file.addParked(parked)
        this.memory.removeParked(parked.map((p) => p.seq))
        moved += parked.length
      }
    } catch (err) {
      if (!isBusy(err)) this.failed(err, now)
      return { res, moved, more: false, err }
    }
    return { res, moved, more: false }
  }

  private failed(err: unknown, now: number): void {
    // a call that races close() (a send answered late) finds the connection closed: no disk trouble
    if (this.closed) return
    this.failures++
    // 0.5 s doubling to a minute: a full disk is not hammered on every write
    this.failedUntil = now + backoffDelay(this.failures, undefined, this.random)
    this.onFailure(err)
  }

  private recovered(): void {
    this.failures = 0
    this.failedUntil = undefined
  }

  /**
   * At shutdown, once sending is over: what memory holds goes to the file, one step of the usual
   * budget a call (the caller comes back while `left`). Not `final`, a lock (or a record still
   * being sent) leaves records in memory for another try; `final`, every record goes, sent or
   * not (one a send still carries is stored once by the collector), until `deadline` (or one
   * step past it; without one, all), and what the file does not take by then is dropped and
   * counted, parked ones too.
   */
  saveSpilled(maxRows: number, final: boolean, deadline?: number): Appended & { left: number } {
    const now = Date.now()
    const budget = !final ? step() : deadline === undefined ? { rows: Infinity, until: Infinity } : { rows: Infinity, until: performance.now() + Math.max(deadline - now, MOVE_BACK_STEP_MS) }
    const back = this.moveBack(maxRows, now, final, budget)
    // a lock stops a try that is not the last without a loss; the last one's time is up
    const stop = back.err !== undefined ? final || !isBusy(back.err) : final && back.more
    if (!stop) return { ...back.res, left: this.memory.count() + this.memory.parkedCount() }
    const lost = this.memory.removeOldest(Infinity)
    const parked = this.memory.listParked(Infinity).map((p) => p.seq)
    this.memory.removeParked(parked)
    return { ...merge(back.res, { seqs: [], dropped: lost.length + parked.length, droppedSeqs: seqRuns(lost) }), left: 0 }
  }

  releaseDead(now: number): number {
    try {
      return this.file.releaseDead(now)
    } catch (err) {
      // a file that cannot even be read: claim says so, and what memory holds ships all the same
      if (isBusy(err)) throw err
      return 0
    }
  }

  claim(limit: number, maxBytes: number, leaseMs: number, now: number): OutboxRow[] {
    // memory first: it needs nothing of the file to ship
    const rows = this.memory.claim(limit, maxBytes, leaseMs, now)
    if (rows.length > 0) return rows
    try {
      return this.file.claim(limit, maxBytes, leaseMs, now)
    } catch (err) {
      if (isBusy(err)) throw err
      // a full disk refuses even a lease: a write failure like any other (one backoff for both),
      // not an error every pass
      const at = Date.now()
      if (this.failedUntil === undefined || at >= this.failedUntil) this.failed(err, at)
      return []
    }
  }

  /** The file's part may throw (a full disk refuses even a delete): the shipper tries again. */
  ack(seqs: readonly number[]): void {
    const [memory, file] = split(seqs, (s) => s)
    if (memory.length) this.memory.ack(memory)
    if (file.length) {
      this.file.ack(file)
      // at most: one already gone is not deleted twice; the next count corrects it
      this.fileCount = Math.max(0, this.fileCount - file.length)
    }
  }

  release(seqs: readonly number[]): void {
    const [memory, file] = split(seqs, (s) => s)
    if (memory.length) this.memory.release(memory)
    if (file.length) this.file.release(file)
  }

  park(items: readonly ParkItem[], now: number): void {
    const [memory, file] = split(items, (i) => i.seq)
    if (memory.length) this.memory.park(memory, now)
    if (file.length) {
      this.file.park(file, now)
      this.fileCount = Math.max(0, this.fileCount - file.length)
    }
  }

  count(): number {
    return this.memory.count() + this.file.count()
  }

  parkedCount(): number {
    return this.memory.parkedCount() + this.file.parkedCount()
  }

  listParked(limit: number): ParkedRow[] {
    const file = this.file.listParked(limit)
    return file.length < limit ? file.concat(this.memory.listParked(limit - file.length)) : file
  }

  replayParked(seqs?: readonly number[]): number {
    // the file's outbox grows by its share: counted again at the next write to memory
    this.countedAt = -Infinity
    if (!seqs) return this.memory.replayParked() + this.file.replayParked()
    const [memory, file] = split(seqs, (s) => s)
    return (memory.length ? this.memory.replayParked(memory) : 0) + (file.length ? this.file.replayParked(file) : 0)
  }

  droppedTotal(): number {
    return this.memory.droppedTotal() + this.file.droppedTotal()
  }

  getMeta(key: string): string | undefined {
    return this.file.getMeta(key)
  }

  setMeta(key: string, value: string): void {
    this.file.setMeta(key, value)
  }

  close(): void {
    this.closed = true
    this.file.close()
  }
}
