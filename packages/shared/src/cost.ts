import { findModelPrice, type ModelPrice } from './prices.js'

/** The fields of a record that decide its cost (an `LlmRecord` fits). */
export interface CostInput {
  model: string
  /** Total tokens; used alone only when the prompt/completion split is missing. */
  tokens?: number
  promptTokens?: number
  completionTokens?: number
  /** Part of promptTokens, billed at the cached-input rate. */
  cachedTokens?: number
  /** Part of completionTokens: already billed as output, never added again. */
  reasoningTokens?: number
  /** A failed call reporting no usage cost nothing; a successful one reporting none is unknown. */
  status?: 'success' | 'error'
}

const count = (n: number | undefined): number => (n !== undefined && Number.isFinite(n) && n > 0 ? Math.floor(n) : 0)

/**
 * Rates are decimals (0.15, 0.075, …) whose products carry binary noise (1e-17 USD); rounding
 * to 1e-10 USD removes it while staying far below any amount anyone bills, and keeps
 * `x * 1e10` inside 2^53 up to ~$900,000 per record.
 */
const roundUsd = (usd: number): number => Math.round(usd * 1e10) / 1e10

/**
 * Cost of one record in USD, or `null` when it cannot be priced (unknown model, or only a
 * total token count for a model without a flat rate). `null` is never the same as $0: callers
 * count it as unpriced.
 *
 * - With the split: `(prompt − cached)·input + cached·cachedInput + completion·output`, rates
 *   per 1M tokens. When one side of the split is missing and `tokens` is given, the missing
 *   side is `tokens − known side` (a record always reports tokens = prompt + completion).
 *   Reasoning tokens are inside completion tokens, so they are not added.
 * - Without the split: `tokens · flatPer1K / 1000`.
 * - No usage at all (no split, tokens 0 or absent — e.g. a stream whose caller did not ask for
 *   usage): unknown, so `null`; except for a failed call (`status: 'error'`), which costs $0.
 */
export function computeCost(record: CostInput, overrides?: Readonly<Record<string, ModelPrice>>): number | null {
  const price = findModelPrice(record.model, overrides)
  if (!price) return null

  if (record.promptTokens !== undefined || record.completionTokens !== undefined) {
    const total = count(record.tokens)
    const prompt = record.promptTokens !== undefined ? count(record.promptTokens) : Math.max(0, total - count(record.completionTokens))
    const completion =
      record.completionTokens !== undefined ? count(record.completionTokens) : Math.max(0, total - count(record.promptTokens))
    // more cached than prompt tokens is a client bug; never bill a negative uncached count
    const cached = Math.min(count(record.cachedTokens), prompt)
    const perMillion = (prompt - cached) * price.input + cached * (price.cachedInput ?? price.input) + completion * price.output
    return roundUsd(perMillion / 1e6)
  }

  const tokens = count(record.tokens)
  if (tokens === 0) return record.status === 'error' ? 0 : null
  if (price.flatPer1K === undefined) return null
  return roundUsd((tokens * price.flatPer1K) / 1000)
}
