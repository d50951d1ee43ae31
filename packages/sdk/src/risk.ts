import * as shared from '@llmguard/shared'

type Scorer = (prompt: string, model: string) => number

/**
 * The shared risk scorer, run locally for `blockOnRisk`. It lives in `@llmguard/shared`
 * (issue 4); until a release of shared exports it this returns undefined and the guard warns
 * once that risk blocking cannot be applied. Accepts the scorer answering a number or
 * `{ score | riskScore }`.
 */
export function sharedRiskScorer(): Scorer | undefined {
  const lib = shared as unknown as Record<string, unknown>
  const fn = lib.scoreRisk ?? lib.computeRiskScore ?? lib.riskScore
  if (typeof fn !== 'function') return undefined
  return (prompt, model) => {
    const out = (fn as (r: unknown) => unknown)({ prompt, response: '', model, tokens: 0, status: 'success' })
    if (typeof out === 'number') return out
    const o = out as { score?: unknown; riskScore?: unknown } | null
    const n = o?.score ?? o?.riskScore
    return typeof n === 'number' ? n : 0
  }
}
