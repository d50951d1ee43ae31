const WINDOW_MS = 60_000

/**
 * Sliding one-minute window per end user (the policy's `userRateLimits`). Pure bookkeeping:
 * the caller passes the clock, so tests need no timers.
 */
export class UserRateLimiter {
  private hits = new Map<string, number[]>()

  /** Counts a call when allowed; otherwise says how long until one would be. */
  take(userId: string, limitPerMinute: number, now: number): { ok: true } | { ok: false; retryAfterMs: number } {
    let list = this.hits.get(userId)
    if (!list) {
      list = []
      this.hits.set(userId, list)
    }
    const from = now - WINDOW_MS
    let drop = 0
    while (drop < list.length && list[drop]! <= from) drop++
    if (drop) list.splice(0, drop)
    if (list.length >= limitPerMinute) {
      return { ok: false, retryAfterMs: Math.max(1, list[list.length - limitPerMinute]! + WINDOW_MS - now) }
    }
    list.push(now)
    return { ok: true }
  }

  /** Forgets users with no call in the window, so the map does not grow without bound. */
  prune(now: number): void {
    for (const [user, list] of this.hits) {
      if (list.length === 0 || list[list.length - 1]! <= now - WINDOW_MS) this.hits.delete(user)
    }
  }

  get size(): number {
    return this.hits.size
  }
}
