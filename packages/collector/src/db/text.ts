/**
 * Why PostgreSQL cannot store this text, or undefined when it can: a NUL character (text and
 * jsonb refuse it) or an unpaired UTF-16 surrogate (jsonb refuses its escape). Ingest repairs
 * such text (ingest/pipeline.ts); every other route refuses it with a 400 (http/body.ts).
 */
export function unstorableText(s: string): 'nul' | 'surrogate' | undefined {
  return s.includes('\u0000') ? 'nul' : s.isWellFormed() ? undefined : 'surrogate'
}

/** Postgres text cannot hold NUL, and JSON with lone surrogates is refused: make strings storable. */
export function storable<T>(value: T): T {
  // almost every record is storable as it is: check without copying, rebuild only when needed
  return isStorable(value) ? value : repaired(value)
}

function isStorable(value: unknown): boolean {
  if (typeof value === 'string') return unstorableText(value) === undefined
  if (value === null || typeof value !== 'object') return true
  if (Array.isArray(value)) {
    for (const v of value) if (!isStorable(v)) return false
    return true
  }
  // for…in with no entry arrays: this runs on every record of every batch
  for (const k in value) if (!isStorable(k) || !isStorable((value as Record<string, unknown>)[k])) return false
  return true
}

function repaired<T>(value: T): T {
  if (typeof value === 'string') {
    const s = value.includes('\u0000') ? value.replaceAll('\u0000', '\uFFFD') : value
    return (s.isWellFormed() ? s : s.toWellFormed()) as T
  }
  if (Array.isArray(value)) return value.map(repaired) as T
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [repaired(k), repaired(v)])) as T
  }
  return value
}
