import { MAX_BATCH_RECORDS, type LlmRecordInput } from '@llmguard/shared'
import { isBusy, type NewRow, type OutboxRow, type OutboxStore } from './outbox/store.js'
import { Shipper, timed, type PassResult, type ShipStats } from './ship/shipper.js'
import type { SendResult } from './ship/result.js'
import { stamp } from './record/build.js'
import { MAX_BATCH_BYTES } from './ship/batch.js'
import { setTimeout as sleep } from 'node:timers/promises'

type FreshRow = NewRow & OutboxRow & { at: number }

/** How long shutdown waits past its bound for an aborted send to end, before saving what it carried. */
const SETTLE_GRACE_MS = 100

/** Rows per outbox transaction: ~5 ms of SQLite work at most on this machine kind. */
const MAX_ROWS_PER_TX = 500

/**
 * Records up to this many chars are never counted in bytes: at most 3 UTF-8 bytes a char, a
 * full batch of them (MAX_BATCH_RECORDS, each with its comma) stays under MAX_BATCH_BYTES, so
 * the byte limit can never be what cuts their batch and a bound serves as well as the count
 * (Buffer.byteLength cost ~0.5 us a record in the writer's loop).
 */
const SMALL_CHARS = Math.floor(((MAX_BATCH_BYTES - 16) / MAX_BATCH_RECORDS - 1) / 3)

export type PipelineStats = ShipStats

export interface PipelineOptions {
  store: OutboxStore
  /** Undefined when shipping is off (no API key): records still reach the outbox. */
  send: ((json: string) => Promise<SendResult>) | undefined
  stats: PipelineStats
  durability: 'buffered' | 'immediate'
  maxRecords: number
  /** The durability window: records reach SQLite within this many ms. */
  writeDelayMs: number
  /** Lets records gather into bigger batches. */
  shipDelayMs: number
  /** Looks for rows other processes (or earlier runs) left. */
  pollMs: number
  onFatal?: (code: string, message: string) => void
  onInternalError: (where: string, err: unknown) => void
}

/**
 * Records on their way out: a memory buffer the caller's path appends to, a writer that moves
 * it to the outbox in small transactions, and the shipper. Every timer is unref'd: LLMGuard
 * never keeps a process alive.
 */
export class Pipeline {
  private buffer: LlmRecordInput[] = []
  private writeTimer: NodeJS.Timeout | undefined
  /** The store's next try at a file that failed, while records wait in memory for it. */
  private retryTimer: NodeJS.Timeout | undefined
  private shipTimer: NodeJS.Timeout | undefined
  private shipAt = Infinity
  /** Until when a failure asked shipping to wait (backoff, Retry-After, a paused key): new records do not cut it short. */
  private waitUntil = 0
  private dirty = false
  private closed = false
  /** The last write found the file locked by another process: a retry is scheduled. */
  private busy = false
  /** The loop a flush runs while the file is locked, shared by every flush waiting. */
  private retrying: Promise<void> | undefined
  readonly shipper: Shipper | undefined

  constructor(private readonly o: PipelineOptions) {
    if (o.send) this.shipper = new Shipper({ store: o.store, send: o.send, stats: o.stats, onFatal: o.onFatal })
  }

  get pendingInMemory(): number {
    return this.buffer.length
  }

  /** The caller's path: in-memory only, unless durability is 'immediate'. */
  enqueue(record: LlmRecordInput): void {
    if (this.closed) {
      this.o.stats.dropped++
      return
    }
    this.buffer.push(record)
    // 'immediate' writes before the call returns, unless the file is locked: each call would then
    // wait out the busy timeout on the app's path. The scheduled retry writes them, as buffered
    if (this.o.durability === 'immediate' && !this.busy) {
      this.write()
      return
    }
    if (this.buffer.length > this.o.maxRecords) {
      // SQLite has been busy for long: the memory buffer obeys the same cap
      this.buffer.shift()
      this.o.stats.dropped++
    }
    this.scheduleWrite(this.o.writeDelayMs)
  }

  /**
   * Moves the buffer to the outbox, at most MAX_ROWS_PER_TX rows per transaction: a burst
   * becomes several short stalls with I/O between them, not one long one (unless `all`, for
   * flush and shutdown). A busy file keeps the buffer for the next try.
   */
  write(all = false): boolean {
    try {
      return this.writeBuffer(all)
    } finally {
      this.scheduleRetry()
    }
  }

  private writeBuffer(all: boolean): boolean {
    const retryAt = this.o.store.retryAt
    if (this.buffer.length === 0 && retryAt !== undefined && Date.now() >= retryAt) {
      // no new records, but some wait in memory for a file that failed: it is tried now
      try {
        this.append([])
      } catch (err) {
        // a lock: the next write tries
        if (!isBusy(err)) this.o.onInternalError('outbox write', err)
      }
    }
    while (this.buffer.length > 0) {
      const records = this.buffer.length <= MAX_ROWS_PER_TX ? this.buffer : this.buffer.slice(0, MAX_ROWS_PER_TX)
      // one object per record serves as the outbox row and, once it has its seq, as the
      // shipper's fresh row: the writer runs for every record
      const rows: FreshRow[] = new Array(records.length)
      const now = Date.now()
      for (let i = 0; i < records.length; i++) {
        const r = stamp(records[i]!)
        const body = JSON.stringify(r)
        const bytes = body.length <= SMALL_CHARS ? body.length * 3 : Buffer.byteLength(body)
        rows[i] = { seq: 0, id: r.id!, body, bytes, createdAt: now, attempts: 0, at: now }
      }
      try {
        this.append(rows)
        this.buffer = records === this.buffer ? [] : this.buffer.slice(records.length)
        this.busy = false
      } catch (err) {
        // a file that fails otherwise (a full disk) is the store's to fall back from
        // (FallbackStore): what still comes here is kept and tried again, as a lock, under the cap
        if (!isBusy(err)) this.o.onInternalError('outbox write', err)
        this.busy = true
        this.scheduleWrite(this.o.writeDelayMs)
        return false
      }
      this.dirty = true
      this.scheduleShip(this.o.shipDelayMs)
      if (!all && this.buffer.length > 0) {
        this.scheduleWrite(0)
        return true
      }
    }
    return true
  }

  /** Appends rows (leased to this process when it ships) and hands them to the shipper. Throws a busy error. */
  private append(rows: FreshRow[]): void {
    const shipper = this.shipper
    const leaseUntil = shipper ? Date.now() + shipper.leaseMs : 0
    const res = timed(this.o.stats, () => this.o.store.append(rows, this.o.maxRecords, leaseUntil))
    this.o.stats.dropped += res.dropped
    if (!shipper) return
    for (let i = 0; i < rows.length; i++) rows[i]!.seq = res.seqs[i]!
    shipper.addFresh(rows)
    // the cap may have taken rows this process holds to send
    if (res.dropped) shipper.forget(res)
  }

  private scheduleWrite(delayMs: number): void {
    if (this.writeTimer || this.closed) return
    this.writeTimer = setTimeout(() => {
      this.writeTimer = undefined
      this.write()
    }, delayMs)
    this.writeTimer.unref()
  }

  /**
   * Records the file could not take wait in memory: a write at the store's next try moves them
   * back, new records or not. A timer of its own, so a write due sooner never waits for it.
   */
  private scheduleRetry(): void {
    const at = this.o.store.retryAt
    if (at === undefined || this.retryTimer || this.closed) return
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined
        this.write()
      },
      Math.max(0, at - Date.now()),
    )
    this.retryTimer.unref()
  }

  private scheduleShip(delayMs: number): void {
    if (!this.shipper || this.closed) return
    const at = Math.max(Date.now() + delayMs, this.waitUntil)
    // an earlier timer stays, unless a failure's wait has since moved past it
    if (this.shipTimer && this.shipAt <= at && this.shipAt >= this.waitUntil) return
    if (this.shipTimer) clearTimeout(this.shipTimer)
    this.shipAt = at
    this.shipTimer = setTimeout(() => {
      this.shipTimer = undefined
      this.shipAt = Infinity
      void this.runPass()
    }, at - Date.now())
    this.shipTimer.unref()
  }

  private async runPass(deadline?: number): Promise<PassResult | undefined> {
    if (!this.shipper) return undefined
    this.dirty = false
    let res: PassResult
    try {
      res = await this.shipper.pass(deadline)
    } catch (err) {
      this.o.onInternalError('shipper', err)
      res = { kind: 'backoff', delayMs: 1000 }
    }
    if (this.closed) return res
    this.waitUntil = res.kind === 'backoff' ? Date.now() + res.delayMs : 0
    if (res.kind === 'backoff') this.scheduleShip(res.delayMs)
    // jittered, so two processes waiting on each other's lock do not collide again
    else if (res.kind === 'busy') this.scheduleShip(20 + Math.random() * 80)
    else if (this.dirty) this.scheduleShip(this.o.shipDelayMs)
    else this.scheduleShip(this.o.pollMs)
    return res
  }

  /**
   * Writes the buffer and ships what the outbox holds, now. Resolves when done or when a failure
   * asks to wait. With a deadline, a file another process holds locked is tried again until then
   * (a flush before shutdown or a serverless freeze would otherwise leave the records in memory).
   */
  async flush(deadline?: number, options: { holdBackoff?: boolean } = {}): Promise<void> {
    // a retry loop already running: joined, without one more try that may block on the lock
    const written = this.retrying ? false : this.write(true)
    if (!written && this.buffer.length > 0 && deadline !== undefined) await this.writeUntil(deadline)
    if (!this.shipper) return
    // the flush after each call in serverless mode: a failure's wait (Retry-After) holds for it too
    if (options.holdBackoff && Date.now() < this.waitUntil) return
    // a pass already running may have claimed its last batch before our rows were written
    if (this.shipper.busy) await this.shipper.pass(deadline)
    await this.runPass(deadline)
  }

  /**
   * Tries a locked file again until `deadline`, one loop for every flush waiting (serverless
   * mode flushes after each call): each try may block for the busy timeout, so they are spaced
   * out and jittered, and processes waiting on each other do not collide again.
   */
  private writeUntil(deadline: number): Promise<void> {
    this.retrying ??= (async () => {
      while (this.buffer.length > 0 && Date.now() < deadline) {
        await sleep(Math.min(50 + Math.random() * 50, Math.max(0, deadline - Date.now())))
        if (this.write(true)) break
      }
    })().finally(() => {
      this.retrying = undefined
    })
    return this.retrying
  }

  /**
   * Stops the timers and writes what is in memory to the outbox; records being sent stay with
   * their send. The store may still hold records in memory for a failed file: saveSpilled().
   */
  stop(): void {
    if (this.closed) return
    this.write(true)
    this.closed = true
    // the batch in flight is answered, and no other starts: shutdown saves what is left
    this.shipper?.stop()
    try {
      this.shipper?.releaseFresh()
    } catch (err) {
      // the lease ends by itself, or the next process sees this one is gone
      this.o.onInternalError('outbox release', err)
    }
    if (this.writeTimer) clearTimeout(this.writeTimer)
    if (this.retryTimer) clearTimeout(this.retryTimer)
    if (this.shipTimer) clearTimeout(this.shipTimer)
    this.writeTimer = this.retryTimer = this.shipTimer = undefined
    if (this.buffer.length) {
      // still busy at the very end: these could not be saved
      this.o.stats.dropped += this.buffer.length
      this.buffer = []
    }
  }

  /**
   * After stop(), once the last send is answered (or at the deadline): what the store holds in
   * memory for a failed file goes to it, a lock tried again until the deadline, as flush() does
   * for the buffer; what is still not saved then is counted as dropped.
   */
  async saveSpilled(deadline: number): Promise<void> {
    // a batch still on its way: its answer settles its records (sent, or back for saving). Past
    // the deadline the transport has been destroyed, and the aborted send ends at once. Waited
    // for with any store: stats() must not move after shutdown has returned
    if (this.shipper?.busy) await within(this.shipper.pass(), Math.max(deadline - Date.now(), SETTLE_GRACE_MS))
    if (!this.o.store.saveSpilled) return
    let before = Infinity
    for (;;) {
      const final = Date.now() >= deadline
      const left = this.saveSpilledNow(final, deadline)
      if (left === 0 || final) return
      // a step that moved records: the next at once, the app's I/O between them; a lock (or a
      // record still being sent): a little later
      await sleep(left < before ? 0 : Math.max(0, Math.min(50 + Math.random() * 50, deadline - Date.now())))
      before = left
    }
  }

  /** Returns how many records still wait in memory. */
  private saveSpilledNow(final: boolean, deadline?: number): number {
    this.shipper?.settleOwed()
    try {
      const res = this.o.store.saveSpilled?.(this.o.maxRecords, final, deadline)
      if (!res) return 0
      this.o.stats.dropped += res.dropped
      // one a send still carries counts as sent if the collector takes it, not also as dropped:
      // given back to the count until its answer, or, at the end, counted until an answer comes
      if (res.dropped && final) this.shipper?.abandon(res.droppedSeqs ?? [])
      else if (res.dropped) this.shipper?.forget(res)
      return res.left
    } catch (err) {
      this.o.onInternalError('outbox close', err)
      return 0
    }
  }

  /**
   * After stop(): waits, until `deadline`, for the batch still in flight to be answered. False if
   * it is not: the caller aborts it (the transport's destroy()).
   */
  async sendsOver(deadline: number): Promise<boolean> {
    if (!this.shipper?.busy) return true
    await within(this.shipper.pass(), deadline - Date.now())
    return !this.shipper.busy
  }

  /** The store is about to close: a send answered late touches it no more (its answer is only counted). */
  detach(): void {
    this.shipper?.detach()
  }

  /** stop(), and one last try to save what the store holds in memory. */
  close(): void {
    this.stop()
    this.saveSpilledNow(true)
  }

  /** For tests: how many timers this pipeline holds. */
  get timersPending(): number {
    return (this.writeTimer ? 1 : 0) + (this.retryTimer ? 1 : 0) + (this.shipTimer ? 1 : 0)
  }
}

/**
 * Waits for `promise` at most `ms`. The timer is ref'd: shutdown's caller awaits this, within
 * its bound.
 */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, ms))))
    await Promise.race([promise, timeout])
  } catch {
    // the pass reports its own failures
  } finally {
    clearTimeout(timer)
  }
}
