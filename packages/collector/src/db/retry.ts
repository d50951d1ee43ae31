/** SQLSTATEs after which the whole transaction may simply run again. */
const RETRYABLE = new Set(['40P01', '40001']) // deadlock_detected, serialization_failure

/**
 * Runs `fn` again when Postgres aborted it as a deadlock victim or a serialization failure:
 * nothing of the aborted attempt was kept, so running it again is safe. A short random pause
 * first, so the two sides of a deadlock do not collide again in step.
 */
export async function retryOnConflict<T>(fn: () => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (err) {
      const code = (err as { code?: string }).code
      if (attempt >= attempts || !code || !RETRYABLE.has(code)) throw err
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20 * attempt))
    }
  }
}
