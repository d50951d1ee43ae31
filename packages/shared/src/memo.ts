/** Memoised lookups keyed by model name (not exported from the package). */

/** Model names come from clients: each cache is bounded, and emptied when full. */
const LIMIT = 1_000

/** `cache`'s value for `key`, computed once (undefined is remembered as null). */
export function memoised<T>(cache: Map<string, T | null>, key: string, compute: () => T | undefined): T | undefined {
  const hit = cache.get(key)
  if (hit !== undefined) return hit ?? undefined
  const value = compute() ?? null
  if (cache.size >= LIMIT) cache.clear()
  cache.set(key, value)
  return value ?? undefined
}
