import { scoreRisk } from '@llmguard/shared'

/**
 * The shared risk scorer, run locally on the prompt for `blockOnRisk`: the same rules the
 * collector scores stored records with (the policy carries no project keywords, so the
 * default keyword list applies).
 */
export function sharedRiskScorer(): (prompt: string, model: string) => number {
  return (prompt, model) => scoreRisk({ prompt, model }).riskScore
}
