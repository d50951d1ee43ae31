import { MAX_BATCH_RECORDS, type LlmRecordInput } from '@llmguard/shared'
import { isBusy, type NewRow, type OutboxRow, type OutboxStore } from './outbox/store.js'
import { Shipper, timed, type PassResult, type ShipStats } from './ship/shipper.js'
import type { SendResult } from './ship/result.js'
import { stamp } from './record/build.js'
import { MAX_BATCH_BYTES } from './ship/batch.js'
import { setTimeout as sleep } from 'node:timers/promises'

type FreshRow = NewRow & OutboxRow & { at: number }

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
        const shipper = this.shipper
        const leaseUntil = shipper ? now + shipper.leaseMs : 0
        const { seqs, dropped, droppedRange } = timed(this.o.stats, () => this.o.store.append(rows, this.o.maxRecords, leaseUntil))
        this.o.stats.dropped += dropped
        if (shipper) {
          for (let i = 0; i < rows.length; i++) rows[i]!.seq = seqs[i]!
          shipper.addFresh(rows)
          // the cap may have taken rows this process holds to send
          if (droppedRange) shipper.forget(droppedRange)
        }
        this.buffer = records === this.buffer ? [] : this.buffer.slice(records.length)
        this.busy = false
      } catch (err) {
        if (!isBusy(err)) {
          // not a lock: a broken file. Keeping the rows in memory would grow without end
          this.o.onInternalError('outbox write', err)
          this.o.stats.dropped += this.buffer.length
          this.buffer = []
          return false
        }
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

  private scheduleWrite(delayMs: number): void {
    if (this.writeTimer || this.closed) return
    this.writeTimer = setTimeout(() => {
      this.writeTimer = undefined
      this.write()
    }, delayMs)
    this.writeTimer.unref()
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

  /** Stops the timers; whatever is in memory goes to the outbox. */
  close(): void {
    this.write(true)
    this.closed = true
    try {
      this.shipper?.releaseFresh()
    } catch (err) {
      // the lease ends by itself, or the next process sees this one is gone
      this.o.onInternalError('outbox release', err)
    }
    if (this.writeTimer) clearTimeout(this.writeTimer)
    if (this.shipTimer) clearTimeout(this.shipTimer)
    this.writeTimer = this.shipTimer = undefined
    if (this.buffer.length) {
      // still busy at the very end: these could not be saved
      this.o.stats.dropped += this.buffer.length
      this.buffer = []
    }
  }

  /** For tests: how many timers this pipeline holds. */
  get timersPending(): number {
    return (this.writeTimer ? 1 : 0) + (this.shipTimer ? 1 : 0)
  }
}
