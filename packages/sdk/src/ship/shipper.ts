import { isBusy, type Appended, type OutboxStore, type OutboxRow, type ParkItem } from '../outbox/store.js'
import { backoffDelay } from './backoff.js'
import { batchBody, MAX_BATCH_BYTES, takeBatch } from './batch.js'
import type { SendResult } from './result.js'
import { performance } from 'node:perf_hooks'
import { MAX_BATCH_RECORDS } from '@llmguard/shared'

export interface ShipStats {
  sent: number
  retried: number
  rejected: number
  /** Dropped by the outbox cap (or after shutdown), never sent: a record is counted here or as sent, not both. */
  dropped: number
  lastError: { code: string; message: string; at: string } | null
  /** The longest synchronous outbox operation (ms): what SQLite cost the event loop at worst. */
  maxOutboxOpMs: number
}

/** Runs a synchronous outbox operation and keeps the longest duration. */
export function timed<T>(stats: ShipStats, fn: () => T): T {
  const t = performance.now()
  try {
    return fn()
  } finally {
    const d = performance.now() - t
    if (d > stats.maxOutboxOpMs) stats.maxOutboxOpMs = d
  }
}

type FreshRow = OutboxRow & { at: number }

export type PassResult =
  | { kind: 'drained' }
  /** try again after delayMs (backoff, Retry-After, or a paused bad key) */
  | { kind: 'backoff'; delayMs: number }
  /** another process holds the outbox lock */
  | { kind: 'busy' }
  | { kind: 'deadline' }

export interface ShipperOptions {
  store: OutboxStore
  send: (json: string) => Promise<SendResult>
  stats: ShipStats
  now?: () => number
  random?: () => number
  /** Longer than a send can take, so a live process never loses its lease. */
  leaseMs?: number
  maxRecords?: number
  maxBytes?: number
  /** How long a bad key or missing endpoint pauses shipping. */
  fatalPauseMs?: number
  onFatal?: (code: string, message: string) => void
}

/**
 * Moves outbox rows to the collector. Rows are deleted only once accepted; one pass runs at a
 * time (a second caller shares the running pass), and several processes share the file
 * through leases.
 */
export class Shipper {
  private running: Promise<PassResult> | null = null
  /**
   * Records leased to this process, waiting for a batch: the ones it wrote (leased at insert,
   * shipped from memory, never read back) and the ones it claimed. Batches are cut from here, so
   * records leased together (one outbox row) are never released while some are still queued.
   */
  private fresh: FreshRow[] = []
  /** The batch being sent: the cap may drop its records from the outbox before the answer comes. */
  private inFlight: FreshRow[] = []
  /**
   * Records of this process's batches the cap dropped from the outbox while they were in flight
   * (then perhaps handed back to `fresh` in halves): sent or parked if the collector takes them,
   * counted as dropped when they go back to the outbox, which no longer has them.
   */
  private gone = new Set<number>()
  /**
   * Records in flight that shutdown could not save (see abandon()): counted as dropped, unless
   * the answer, come late, says the collector took them.
   */
  private abandoned = new Set<number>()
  /**
   * Answers the outbox could not record yet (a full disk refuses even a delete): counted when the
   * collector gave them, written at the start of each pass until the file takes them. Their rows
   * stay leased to this process meanwhile, and are not sent again if a claim brings them back.
   */
  private owed: { park: ParkItem[]; ack: Set<number> } = { park: [], ack: new Set() }
  private deadCheckAt = 0
  /** Stopped (shutdown): a pass ends after the batch in flight, no new one starts. */
  private stopped = false
  /** The outbox is closed: an answer that comes now is counted, but nothing touches the store. */
  private detached = false
  private attempt = 0
  private limit: number
  private readonly o: Required<Omit<ShipperOptions, 'onFatal'>> & Pick<ShipperOptions, 'onFatal'>

  constructor(options: ShipperOptions) {
    this.o = {
      now: Date.now,
      random: Math.random,
      leaseMs: 60_000,
      maxRecords: MAX_BATCH_RECORDS,
      maxBytes: MAX_BATCH_BYTES,
      fatalPauseMs: 60_000,
      ...options,
    }
    this.limit = this.o.maxRecords
  }

  /** The lease rows get at insert, when they will be shipped from memory. */
  get leaseMs(): number {
    return this.o.leaseMs
  }

  addFresh(rows: FreshRow[]): void {
    for (const r of rows) this.fresh.push(r)
  }

  /** No new batch from now on: a pass running ends once the batch in flight is answered. */
  stop(): void {
    this.stopped = true
  }

  /** The outbox is being closed: nothing touches it from now on (a late answer is only counted). */
  detach(): void {
    this.stopped = this.detached = true
  }

  /** Hands fresh rows back to the outbox (a failed send, shutdown): other passes or processes take them from there. */
  releaseFresh(): void {
    if (this.fresh.length === 0 || this.detached) return
    const seqs = this.fresh.map((r) => r.seq)
    this.fresh = []
    this.lose(seqs)
    timed(this.o.stats, () => this.o.store.release(seqs))
  }

  /**
   * The cap dropped records (and the caller counted the ones this process dropped). The ones
   * waiting here are not sent: a record counted as dropped is never also sent. The ones this
   * process dropped while they were in flight are given back to the count until their answer:
   * if the collector takes them they were sent, not dropped. (One another process dropped is
   * that process's count: nothing to give back here.)
   */
  forget({ goneRanges, droppedSeqs }: Pick<Appended, 'goneRanges' | 'droppedSeqs'>): void {
    if (goneRanges?.length) {
      const isGone = (r: FreshRow) => goneRanges.some(([from, to]) => r.seq >= from && r.seq < to)
      if (this.fresh.some(isGone)) {
        const kept: FreshRow[] = []
        for (const r of this.fresh) {
          if (!isGone(r)) kept.push(r)
          // one that went while in flight was given back to the count then
          else if (this.gone.delete(r.seq)) this.o.stats.dropped++
        }
        this.fresh = kept
      }
    }
    if (!droppedSeqs?.length) return
    for (const r of this.inFlight) {
      if (this.gone.has(r.seq) || !droppedSeqs.some(([a, b]) => r.seq >= a && r.seq <= b)) continue
      this.gone.add(r.seq)
      this.o.stats.dropped--
    }
  }

  /**
   * Shutdown dropped these records (counted) while some were still in flight: stats() is read
   * next, so they stay counted as dropped until an answer says the collector took them.
   */
  abandon(runs: readonly [number, number][]): void {
    for (const r of this.inFlight) if (!this.gone.has(r.seq) && runs.some(([a, b]) => r.seq >= a && r.seq <= b)) this.abandoned.add(r.seq)
  }

  /** These records go back to the outbox (or are settled): the ones the cap dropped meanwhile are lost now. */
  private lose(seqs: readonly number[]): void {
    if (this.gone.size === 0 && this.abandoned.size === 0) return
    for (const seq of seqs) {
      if (this.gone.delete(seq)) this.o.stats.dropped++
      this.abandoned.delete(seq)
    }
  }

  /** Settled with the collector (sent, parked): whatever the cap did meanwhile, not dropped. */
  private settled(seqs: readonly number[]): void {
    if (this.gone.size === 0 && this.abandoned.size === 0) return
    for (const seq of seqs) {
      this.gone.delete(seq)
      if (this.abandoned.delete(seq)) this.o.stats.dropped--
    }
  }

  private takeFresh(now: number): FreshRow[] {
    if (this.fresh.length === 0) return []
    // a row that waited long in memory could see its lease end: the outbox path handles it
    if (now - this.fresh[0]!.at > this.o.leaseMs / 2) {
      this.releaseFresh()
      return []
    }
    const batch = takeBatch(this.fresh, this.limit, this.o.maxBytes)
    this.fresh = this.fresh.length === batch.length ? [] : this.fresh.slice(batch.length)
    return batch
  }

  get busy(): boolean {
    return this.running !== null
  }

  /** Ships until the outbox is empty, a failure asks to wait, or the deadline passes. */
  pass(deadline?: number): Promise<PassResult> {
    if (!this.running) {
      this.running = this.loop(deadline).finally(() => {
        this.running = null
      })
    }
    return this.running
  }

  private fail(code: string, message: string): void {
    this.o.stats.lastError = { code, message, at: new Date(this.o.now()).toISOString() }
  }

  private async loop(deadline: number | undefined): Promise<PassResult> {
    const { store } = this.o
    for (;;) {
      if (deadline !== undefined && this.o.now() >= deadline) return { kind: 'deadline' }
      // shutdown: the store is about to close (or is closed), no batch starts now
      if (this.stopped) return { kind: 'deadline' }
      let batch: FreshRow[]
      try {
        const now = this.o.now()
        if (this.owed.park.length || this.owed.ack.size) this.payOwed()
        batch = this.takeFresh(now)
        if (batch.length === 0) {
          if (now >= this.deadCheckAt) {
            // leases of a killed process would otherwise hold its rows until they expire
            this.deadCheckAt = now + 30_000
            timed(this.o.stats, () => store.releaseDead(now))
          }
          const claimed = timed(this.o.stats, () => store.claim(this.limit, this.o.maxBytes, this.o.leaseMs, now))
          for (const r of claimed) {
            // the collector has it already; the delete is still owed
            if (!this.owed.ack.has(r.seq)) this.fresh.push({ seq: r.seq, id: r.id, body: r.body, bytes: r.bytes, attempts: r.attempts, at: now })
          }
          batch = this.takeFresh(now)
        }
      } catch (err) {
        if (isBusy(err)) return { kind: 'busy' }
        this.fail('OUTBOX_ERROR', String(err))
        return { kind: 'backoff', delayMs: 1000 }
      }
      if (batch.length === 0) return { kind: 'drained' }
      this.inFlight = batch
      let res: SendResult
      try {
        res = await this.o.send(batchBody(batch))
      } finally {
        this.inFlight = []
      }
      const next = timed(this.o.stats, () => this.settle(batch, res))
      if (next) return next
    }
  }

  /**
   * Records the collector's answer in the outbox. Counted before (the answer is what counts):
   * what the outbox refuses now (a lock, a full disk) is owed and written by the next pass.
   */
  private record(park: ParkItem[], ack: number[]): void {
    if (this.detached) return
    for (const p of park) this.owed.park.push(p)
    for (const s of ack) this.owed.ack.add(s)
    try {
      this.payOwed(true)
    } catch {
      // a lock: owed, written by the next pass
    }
  }

  /**
   * Writes what the outbox owes. Both writes are idempotent: a record already parked or deleted
   * is skipped when tried again. Throws a busy error (the pass ends and comes back); a file that
   * still refuses stays owed (`report`: said in lastError).
   */
  private payOwed(report = false): void {
    if (this.detached) return
    const { park, ack } = this.owed
    this.owed = { park: [], ack: new Set() }
    try {
      if (park.length) this.o.store.park(park, this.o.now())
      if (ack.size) this.o.store.ack([...ack])
    } catch (err) {
      this.owed = { park, ack }
      if (isBusy(err)) throw err
      if (report) this.fail('OUTBOX_ERROR', String(err))
    }
  }

  /** At shutdown: one more try at what the outbox owes; what it still refuses is sent again by a later start (the collector dedupes). */
  settleOwed(): void {
    try {
      if (this.owed.park.length || this.owed.ack.size) this.payOwed()
    } catch {
      // a lock, again
    }
  }

  /** Hands records back for a later try; one the outbox cannot take back now comes back when its lease ends. */
  private release(seqs: readonly number[]): void {
    if (this.detached) return
    try {
      this.o.store.release(seqs)
      this.releaseFresh()
    } catch {
      // the lease ends by itself
    }
  }

  /** Applies one answer to the outbox; returns how the pass ends, or undefined to go on. */
  private settle(batch: FreshRow[], res: SendResult): PassResult | undefined {
    const { stats } = this.o
    const seqs = batch.map((r) => r.seq)
    switch (res.kind) {
      case 'ok': {
        const parked: ParkItem[] = []
        for (const r of res.result.rejected) {
          const row = batch[r.index]
          if (row) parked.push({ seq: row.seq, code: r.code, message: r.message })
        }
        const parkedSeqs = new Set(parked.map((p) => p.seq))
        this.settled(seqs)
        stats.sent += batch.length - parked.length
        stats.rejected += parked.length
        this.record(parked, parked.length ? seqs.filter((s) => !parkedSeqs.has(s)) : seqs)
        this.attempt = 0
        // after a 413 the limit grows back step by step
        this.limit = Math.min(this.o.maxRecords, this.limit * 2)
        return undefined
      }
      case 'too-large':
        if (batch.length === 1) {
          this.settled(seqs)
          stats.rejected += 1
          this.record([{ seq: batch[0]!.seq, code: 'PAYLOAD_TOO_LARGE', message: res.message, status: 413 }], [])
        } else {
          // still leased to this process: back to the front of the queue, to go in halves
          this.fresh = batch.concat(this.fresh)
          this.limit = Math.max(1, Math.floor(batch.length / 2))
        }
        return undefined
      case 'reject':
        // a whole-batch 4xx: halve until the bad record is alone, then park only it
        if (batch.length === 1 || res.code === 'PLAN_LIMIT_EXCEEDED') {
          this.settled(seqs)
          stats.rejected += batch.length
          this.fail(res.code, res.message)
          this.record(
            batch.map((r) => ({ seq: r.seq, code: res.code, message: res.message, status: res.status })),
            [],
          )
        } else {
          this.fresh = batch.concat(this.fresh)
          this.limit = Math.max(1, Math.ceil(batch.length / 2))
        }
        return undefined
      case 'retry': {
        this.lose(seqs)
        this.release(seqs)
        stats.retried += batch.length
        this.attempt++
        // shutdown's own abort at its bound (the transport destroyed): said as such, not as a
        // network failure of the collector's
        if (this.stopped && res.code === 'UND_ERR_DESTROYED') this.fail('SHUTDOWN_TIMEOUT', `the collector had not answered a batch of ${batch.length} when shutdown's time was up: its records stay in the outbox for the next start`)
        else this.fail(res.code, res.message)
        return { kind: 'backoff', delayMs: backoffDelay(this.attempt, res.afterMs, this.o.random) }
      }
      case 'fatal':
        this.lose(seqs)
        this.release(seqs)
        this.fail(res.code, res.message)
        this.o.onFatal?.(res.code, res.message)
        return { kind: 'backoff', delayMs: res.afterMs ?? this.o.fatalPauseMs }
    }
  }
}
