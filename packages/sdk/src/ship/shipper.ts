import { isBusy, type OutboxStore, type OutboxRow, type ParkItem } from '../outbox/store.js'
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
  private deadCheckAt = 0
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

  /** Hands fresh rows back to the outbox (a failed send, shutdown): other passes or processes take them from there. */
  releaseFresh(): void {
    if (this.fresh.length === 0) return
    const seqs = this.fresh.map((r) => r.seq)
    this.fresh = []
    this.lose(seqs)
    timed(this.o.stats, () => this.o.store.release(seqs))
  }

  /**
   * The cap dropped the outbox's records with seqs in [from, to) (and counted them). The ones
   * waiting here are not sent: a record counted as dropped is never also sent. The ones in
   * flight are given back to the count until their answer: if the collector takes them they
   * were sent, not dropped.
   */
  forget([from, to]: readonly [number, number]): void {
    const dropped = (r: FreshRow) => r.seq >= from && r.seq < to
    if (this.fresh.some(dropped)) {
      const kept: FreshRow[] = []
      for (const r of this.fresh) {
        if (!dropped(r)) kept.push(r)
        // one that went while in flight was given back to the count then
        else if (this.gone.delete(r.seq)) this.o.stats.dropped++
      }
      this.fresh = kept
    }
    for (const r of this.inFlight) {
      if (!dropped(r) || this.gone.has(r.seq)) continue
      this.gone.add(r.seq)
      this.o.stats.dropped--
    }
  }

  /** These records go back to the outbox (or are settled): the ones the cap dropped meanwhile are lost now. */
  private lose(seqs: readonly number[]): void {
    if (this.gone.size === 0) return
    for (const seq of seqs) if (this.gone.delete(seq)) this.o.stats.dropped++
  }

  /** Settled with the collector (sent, parked): whatever the cap did meanwhile, not dropped. */
  private settled(seqs: readonly number[]): void {
    if (this.gone.size === 0) return
    for (const seq of seqs) this.gone.delete(seq)
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
      let batch: FreshRow[]
      try {
        const now = this.o.now()
        batch = this.takeFresh(now)
        if (batch.length === 0) {
          if (now >= this.deadCheckAt) {
            // leases of a killed process would otherwise hold its rows until they expire
            this.deadCheckAt = now + 30_000
            timed(this.o.stats, () => store.releaseDead(now))
          }
          const claimed = timed(this.o.stats, () => store.claim(this.limit, this.o.maxBytes, this.o.leaseMs, now))
          for (const r of claimed) this.fresh.push({ seq: r.seq, id: r.id, body: r.body, bytes: r.bytes, attempts: r.attempts, at: now })
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
      try {
        const next = timed(this.o.stats, () => this.settle(batch, res))
        if (next) return next
      } catch (err) {
        // the rows stay leased and come back when the lease ends: nothing is lost (the ones the
        // cap dropped meanwhile are not counted again)
        this.settled(batch.map((r) => r.seq))
        if (!isBusy(err)) this.fail('OUTBOX_ERROR', String(err))
        return isBusy(err) ? { kind: 'busy' } : { kind: 'backoff', delayMs: 1000 }
      }
    }
  }

  /** Applies one answer to the outbox; returns how the pass ends, or undefined to go on. */
  private settle(batch: FreshRow[], res: SendResult): PassResult | undefined {
    const { store, stats } = this.o
    const seqs = batch.map((r) => r.seq)
    switch (res.kind) {
      case 'ok': {
        const parked: ParkItem[] = []
        for (const r of res.result.rejected) {
          const row = batch[r.index]
          if (row) parked.push({ seq: row.seq, code: r.code, message: r.message })
        }
        if (parked.length) store.park(parked, this.o.now())
        const parkedSeqs = new Set(parked.map((p) => p.seq))
        store.ack(parked.length ? seqs.filter((s) => !parkedSeqs.has(s)) : seqs)
        this.settled(seqs)
        stats.sent += batch.length - parked.length
        stats.rejected += parked.length
        this.attempt = 0
        // after a 413 the limit grows back step by step
        this.limit = Math.min(this.o.maxRecords, this.limit * 2)
        return undefined
      }
      case 'too-large':
        if (batch.length === 1) {
          store.park([{ seq: batch[0]!.seq, code: 'PAYLOAD_TOO_LARGE', message: res.message, status: 413 }], this.o.now())
          this.settled(seqs)
          stats.rejected += 1
        } else {
          // still leased to this process: back to the front of the queue, to go in halves
          this.fresh = batch.concat(this.fresh)
          this.limit = Math.max(1, Math.floor(batch.length / 2))
        }
        return undefined
      case 'reject':
        // a whole-batch 4xx: halve until the bad record is alone, then park only it
        if (batch.length === 1 || res.code === 'PLAN_LIMIT_EXCEEDED') {
          store.park(
            batch.map((r) => ({ seq: r.seq, code: res.code, message: res.message, status: res.status })),
            this.o.now(),
          )
          this.settled(seqs)
          stats.rejected += batch.length
          this.fail(res.code, res.message)
        } else {
          this.fresh = batch.concat(this.fresh)
          this.limit = Math.max(1, Math.ceil(batch.length / 2))
        }
        return undefined
      case 'retry': {
        this.lose(seqs)
        store.release(seqs)
        this.releaseFresh()
        stats.retried += batch.length
        this.attempt++
        this.fail(res.code, res.message)
        return { kind: 'backoff', delayMs: backoffDelay(this.attempt, res.afterMs, this.o.random) }
      }
      case 'fatal':
        this.lose(seqs)
        store.release(seqs)
        this.releaseFresh()
        this.fail(res.code, res.message)
        this.o.onFatal?.(res.code, res.message)
        return { kind: 'backoff', delayMs: res.afterMs ?? this.o.fatalPauseMs }
    }
  }
}
