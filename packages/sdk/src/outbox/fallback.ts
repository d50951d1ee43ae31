import { backoffDelay } from '../ship/backoff.js'
import { isBusy, MemoryStore, type Appended, type NewRow, type OutboxRow, type OutboxStore, type ParkedRow, type ParkItem } from './store.js'

/**
 * The memory's seqs start here, far past any the file's AUTOINCREMENT reaches, so a seq alone
 * says which store holds its record.
 */
export const MEMORY_SEQS = 2 ** 52

/** Records moved back to the file per write: a backlog goes back in short transactions, not one long stall. */
const MOVE_BACK_ROWS = 500

/** How often memory is looked at again for records a send has let go of since, to move them back. */
const MOVE_BACK_MS = 1_000

const inMemory = (seq: number) => seq >= MEMORY_SEQS

function split<T>(items: readonly T[], seqOf: (item: T) => number): [memory: T[], file: T[]] {
  const memory: T[] = []
  const file: T[] = []
  for (const i of items) (inMemory(seqOf(i)) ? memory : file).push(i)
  return [memory, file]
}

const asNew = (rows: readonly OutboxRow[], now: number): NewRow[] => rows.map((r) => ({ id: r.id, body: r.body, bytes: r.bytes, createdAt: now }))

/** Two appends to the file, as one: both dropped ranges start at 0 (see SqliteStore#dropOldest). */
function merge(a: Appended, b: Appended): Appended {
  if (!b.droppedRange) return a
  const to = Math.max(a.droppedRange?.[1] ?? 0, b.droppedRange[1])
  return { seqs: a.seqs, dropped: a.dropped + b.dropped, droppedRange: [0, to] }
}

/**
 * The SQLite outbox, with memory to fall back on when a write fails for another reason than a
 * lock (a full disk, an I/O error, the file made read-only underneath): the records go to
 * memory, under the same cap, and ship from there; the file is tried again with a backoff, not
 * on every write; once it takes writes again, what memory still holds moves back to it. What
 * the file already held stays in it, for this process or a later one.
 */
export class FallbackStore implements OutboxStore {
  readonly kind = 'sqlite' as const
  private readonly memory = new MemoryStore(MEMORY_SEQS)
  private failures = 0
  /** While writes to the file fail: when to try it again. Writes before then go to memory. */
  private failedUntil: number | undefined
  /**
   * The last try at the file (with new records, or moving back the ones memory holds): records
   * being sent then stayed in memory, and a send may let go of them later.
   */
  private triedAt = 0

  constructor(
    readonly file: OutboxStore,
    /** Every failed write to the file (the guard warns once). */
    private readonly onFailure: (err: unknown) => void,
    private readonly random: () => number = Math.random,
  ) {}

  get path(): string | null {
    return this.file.path
  }

  /** While memory holds records: when to try the file again, to move them back (the writer does, new records or not). */
  get retryAt(): number | undefined {
    if (this.memory.count() === 0) return undefined
    return Math.max(this.failedUntil ?? 0, this.triedAt + MOVE_BACK_MS)
  }

  /** Records held in memory because the file could not take them. */
  get spilled(): number {
    return this.memory.count()
  }

  append(rows: readonly NewRow[], maxRows: number, leaseUntil = 0): Appended {
    const now = Date.now()
    if (this.failedUntil !== undefined && now < this.failedUntil) return this.memory.append(rows, maxRows, leaseUntil)
    this.triedAt = now
    let res: Appended
    try {
      res = this.file.append(rows, maxRows, leaseUntil)
    } catch (err) {
      if (isBusy(err)) throw err
      this.failed(err, now)
      return this.memory.append(rows, maxRows, leaseUntil)
    }
    if (rows.length > 0) this.recovered()
    return this.memory.count() > 0 ? merge(res, this.moveBack(maxRows, now)) : res
  }

  /**
   * Moves records memory holds and nobody is sending (a failed send released them, or nothing
   * ships) back to the file: they are safer there. The ones being sent stay, so none is sent twice.
   */
  private moveBack(maxRows: number, now: number): Appended {
    const none: Appended = { seqs: [], dropped: 0 }
    const back = this.memory.claim(MOVE_BACK_ROWS, Infinity, 60_000, now)
    if (back.length === 0) return none
    const seqs = back.map((r) => r.seq)
    try {
      const moved = this.file.append(asNew(back, now), maxRows)
      this.memory.ack(seqs)
      this.recovered()
      return moved
    } catch (err) {
      this.memory.release(seqs)
      if (!isBusy(err)) this.failed(err, now)
      return none
    }
  }

  private failed(err: unknown, now: number): void {
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
   * The last try, at shutdown: every record memory holds goes to the file, sent or not (one a
   * send still carries is stored once by the collector). Returns how many were dropped: by the
   * cap, or lost because the file still fails.
   */
  saveSpilled(maxRows: number): number {
    let dropped = 0
    for (;;) {
      // a lease never outlasts Infinity: every record, whoever holds it
      const rows = this.memory.claim(MOVE_BACK_ROWS, Infinity, 0, Infinity)
      if (rows.length === 0) return dropped
      const seqs = rows.map((r) => r.seq)
      try {
        dropped += this.file.append(asNew(rows, Date.now()), maxRows).dropped
      } catch (err) {
        if (!isBusy(err)) this.onFailure(err)
        dropped += rows.length
      }
      this.memory.ack(seqs)
    }
  }

  releaseDead(now: number): number {
    try {
      return this.file.releaseDead(now)
    } catch (err) {
      // a file that cannot even be read: what memory holds ships all the same
      if (isBusy(err) || this.memory.count() === 0) throw err
      return 0
    }
  }

  claim(limit: number, maxBytes: number, leaseMs: number, now: number): OutboxRow[] {
    // memory first: it needs nothing of the file to ship
    const rows = this.memory.claim(limit, maxBytes, leaseMs, now)
    return rows.length > 0 ? rows : this.file.claim(limit, maxBytes, leaseMs, now)
  }

  ack(seqs: readonly number[]): void {
    const [memory, file] = split(seqs, (s) => s)
    if (memory.length) this.memory.ack(memory)
    if (file.length) this.file.ack(file)
  }

  release(seqs: readonly number[]): void {
    const [memory, file] = split(seqs, (s) => s)
    if (memory.length) this.memory.release(memory)
    if (file.length) this.file.release(file)
  }

  park(items: readonly ParkItem[], now: number): void {
    const [memory, file] = split(items, (i) => i.seq)
    if (memory.length) this.memory.park(memory, now)
    if (file.length) this.file.park(file, now)
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
    this.file.close()
  }
}
