/** The sliding window of SPEC "Rate limiting": one minute. */
export const WINDOW_MS = 60_000

export interface Decision {
  allowed: boolean
  limit: number
  remaining: number
  /** Whole seconds until the window frees capacity (Retry-After when refused), at least 1. */
  resetSeconds: number
}

/**
 * One subject's (an API key's or a user's) sliding window as one instance sees it: the exact
 * times of the requests this instance admitted, plus per-second counts of the other instances
 * as of the last sync. Pure bookkeeping; time is passed in.
 */
export class SubjectWindow {
  /** Admission times of this instance, oldest first (a queue: `head` is its start). */
  private times: number[] = []
  private head = 0
  /** This instance's admissions per epoch second, for the next sync. */
  readonly localSeconds = new Map<number, number>()
  /** Seconds whose local count changed since the last sync. */
  readonly dirty = new Set<number>()
  /** The other instances' admissions per epoch second, as of the last sync. */
  remoteSeconds = new Map<number, number>()
  /** Admissions since the last sync, and how many this instance may make before the next. */
  sinceSync = 0
  share = Infinity
  limit = 0
  lastUsed = 0
  /** The instance count of the last sync (1 until one). */
  private instances = 1

  private expire(now: number): void {
    const from = now - WINDOW_MS
    while (this.head < this.times.length && this.times[this.head]! <= from) this.head++
    // compact now and then, so the queue does not grow for ever
    if (this.head > 1024 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head)
      this.head = 0
    }
  }

  get localCount(): number {
    return this.times.length - this.head
  }

  /** Other instances' requests in the window; a partly covered second counts whole (never overshoot). */
  remoteCount(now: number): number {
    const first = Math.floor((now - WINDOW_MS) / 1000)
    let sum = 0
    for (const [second, count] of this.remoteSeconds) if (second >= first) sum += count
    return sum
  }

  used(now: number): number {
    this.expire(now)
    return this.localCount + this.remoteCount(now)
  }

  /** Admits or refuses one request at `now` under `limit` requests per window. */
  take(now: number, limit: number): Decision {
    const used = this.used(now)
    // a lower limit (the project's rateLimit just lowered): the share computed from the old one
    // would let each instance spend far past the new limit until the next sync
    if (limit < this.limit) this.share = Math.min(this.share, this.shareOf(limit, used))
    this.limit = limit
    this.lastUsed = now
    if (used >= limit || this.sinceSync >= this.share) {
      // over the shared budget until the next sync: capacity may come back within a second
      const reset = used >= limit ? this.resetSeconds(now) : 1
      return { allowed: false, limit, remaining: 0, resetSeconds: reset }
    }
    this.times.push(now)
    const second = Math.floor(now / 1000)
    this.localSeconds.set(second, (this.localSeconds.get(second) ?? 0) + 1)
    this.dirty.add(second)
    this.sinceSync++
    return { allowed: true, limit, remaining: Math.max(0, limit - used - 1), resetSeconds: this.resetSeconds(now) }
  }

  /** Seconds until the oldest request in the window leaves it (the full window when empty). */
  private resetSeconds(now: number): number {
    let oldest = this.head < this.times.length ? this.times[this.head]! : Infinity
    const first = Math.floor((now - WINDOW_MS) / 1000)
    for (const [second, count] of this.remoteSeconds) if (second >= first && count > 0) oldest = Math.min(oldest, (second + 1) * 1000)
    const ms = oldest === Infinity ? WINDOW_MS : oldest + WINDOW_MS - now
    return Math.max(1, Math.ceil(ms / 1000))
  }

  /** After a sync: the others' counts, and this instance's share of what is left until the next. */
  synced(now: number, remote: Map<number, number>, instances: number): void {
    this.remoteSeconds = remote
    this.sinceSync = 0
    // Alone, the window is exact. With N instances, each sees the others' counts up to one sync
    // late, and each of them may have spent up to its own share meanwhile; spending only 1/N² of
    // what is left per interval keeps the sum within the limit despite that (a burst on a
    // single instance then ramps up over a few intervals instead of overshooting).
    this.instances = instances
    this.share = this.shareOf(this.limit, this.used(now))
    const first = Math.floor((now - WINDOW_MS) / 1000) - 1
    for (const second of this.localSeconds.keys()) if (second < first) this.localSeconds.delete(second)
  }

  /**
   * At least one while anything is left: with a small limit and several instances, 1/N² of what
   * is left rounds to 0 and every instance would refuse everything (a limit of 10 on 4 instances
   * admitted nothing). The price is an overshoot of at most N − 1 near the limit.
   */
  private shareOf(limit: number, used: number): number {
    const n = this.instances
    if (n <= 1) return Infinity
    return limit - used >= 1 ? Math.max(1, Math.floor((limit - used) / (n * n))) : 0
  }

  /** Nothing of this subject left in the window and not used lately: it can be forgotten. */
  idle(now: number): boolean {
    return now - this.lastUsed > WINDOW_MS + 2_000
  }
}
