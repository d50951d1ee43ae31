/**
 * Why PostgreSQL cannot store this text, or undefined when it can: a NUL character (text and
 * jsonb refuse it) or an unpaired UTF-16 surrogate (jsonb refuses its escape). Ingest repairs
 * such text (ingest/pipeline.ts); every other route refuses it with a 400 (http/body.ts).
 */
export function unstorableText(s: string): 'nul' | 'surrogate' | undefined {
  return s.includes('\u0000') ? 'nul' : s.isWellFormed() ? undefined : 'surrogate'
}
