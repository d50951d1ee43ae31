import { memoised } from '../memo.js'
import { findByModelPrefix, normalizeModelName } from '../prices.js'

export interface ModelRiskAdjustment {
  points: -5 | 5
  why: string
}

const OLDER = 'older or small model with weaker refusal training'
const SAFER = 'model with stronger built-in safety training'
const OPEN = 'open-weight model without a provider-side safety layer'

/**
 * The seed's "model-specific risk adjustment ±5". Keys match by longest prefix ending before
 * `-`, `.`, `:`, `_` or `@` (so `llama3.1:8b` → `llama3`, `gpt-5.2` → `gpt-5`), provider prefix
 * dropped, case-insensitive; a model not listed gets 0 and no
 * reason. +5: legacy and nano-sized models that refuse and follow system prompts less
 * reliably, and open-weight families usually served without a moderation layer. −5: reasoning
 * models and families trained with deliberative alignment / safe completions, which resist
 * jailbreaks measurably better in their providers' published evaluations.
 */
export const MODEL_RISK_ADJUSTMENTS: Readonly<Record<string, ModelRiskAdjustment>> = Object.freeze({
  // +5
  'gpt-3.5-turbo': { points: 5, why: OLDER },
  'gpt-35-turbo': { points: 5, why: OLDER },
  'gpt-3.5-turbo-instruct': { points: 5, why: OLDER },
  'davinci-002': { points: 5, why: OLDER },
  'babbage-002': { points: 5, why: OLDER },
  'text-davinci': { points: 5, why: OLDER },
  'gpt-4.1-nano': { points: 5, why: OLDER },
  'llama': { points: 5, why: OPEN },
  'llama2': { points: 5, why: OPEN },
  'llama3': { points: 5, why: OPEN },
  'meta-llama': { points: 5, why: OPEN },
  'mistral': { points: 5, why: OPEN },
  'mixtral': { points: 5, why: OPEN },
  'vicuna': { points: 5, why: OPEN },
  'wizardlm': { points: 5, why: OPEN },
  'dolphin': { points: 5, why: OPEN },
  'nous-hermes': { points: 5, why: OPEN },
  // −5
  'o1': { points: -5, why: SAFER },
  'o3': { points: -5, why: SAFER },
  'o3-mini': { points: -5, why: SAFER },
  'o4-mini': { points: -5, why: SAFER },
  'gpt-5': { points: -5, why: SAFER },
  'gpt-5.1': { points: -5, why: SAFER },
  'claude': { points: -5, why: SAFER },
})

const RISK_BOUNDARIES = '-.:_@'
const ADJUSTMENTS = new Map(Object.entries(MODEL_RISK_ADJUSTMENTS))
/** Whatever the family, a model advertised as uncensored or abliterated gets +5. */
const UNCENSORED = /uncensored|abliterated/

const UNCENSORED_ADJUSTMENT: ModelRiskAdjustment = Object.freeze({ points: 5, why: 'model advertised as uncensored' })
// every scored record asks, for the same few model names (bounded: the names come from clients)
const BY_MODEL = new Map<string, ModelRiskAdjustment | null>()

export function modelRiskAdjustment(model: string): ModelRiskAdjustment | undefined {
  return memoised(BY_MODEL, model, () =>
    UNCENSORED.test(normalizeModelName(model)) ? UNCENSORED_ADJUSTMENT : findByModelPrefix((k) => ADJUSTMENTS.get(k), model, RISK_BOUNDARIES),
  )
}
