import { z } from 'zod'
import { memoised } from './memo.js'

/**
 * Prices of one model in USD per 1M tokens (OpenAI's unit), plus an optional flat rate in USD
 * per 1K tokens (the seed's unit) used when a record carries only a total token count.
 */
export interface ModelPrice {
  /** USD per 1M uncached prompt (input) tokens. */
  input: number
  /** USD per 1M cached prompt tokens; when absent the model has no cache discount (= input). */
  cachedInput?: number
  /** USD per 1M completion (output) tokens, reasoning tokens included. */
  output: number
  /** USD per 1K tokens when only the total is known; absent = such records are unpriced. */
  flatPer1K?: number
}

/** The month of OpenAI's public price list (Standard tier) the rates below come from. */
export const PRICES_AS_OF = '2025-11'

const usd = (input: number, cachedInput: number | undefined, output: number, flatPer1K?: number): ModelPrice => {
  const p: ModelPrice = { input, output }
  if (cachedInput !== undefined) p.cachedInput = cachedInput
  if (flatPer1K !== undefined) p.flatPer1K = flatPer1K
  return p
}
/** Embeddings: every token is an input token, so the flat rate is exact, not an estimate. */
const embedding = (input: number, flatPer1K: number): ModelPrice => ({ input, output: 0, flatPer1K })

/**
 * OpenAI list prices (USD per 1M tokens). Keys are matched against a record's model by longest
 * prefix at a `-` boundary (see `findModelPrice`), so dated snapshots such as
 * `gpt-4o-2024-08-06` take their family's price and `gpt-4o-mini` never takes gpt-4o's.
 * A snapshot priced differently from its family gets its own key (`gpt-4o-2024-05-13`).
 */
export const MODEL_PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze({
  // GPT-5 family
  'gpt-5': usd(1.25, 0.125, 10),
  'gpt-5-mini': usd(0.25, 0.025, 2),
  'gpt-5-nano': usd(0.05, 0.005, 0.4),
  'gpt-5-pro': usd(15, undefined, 120),
  'gpt-5-codex': usd(1.25, 0.125, 10),
  'gpt-5.1': usd(1.25, 0.125, 10),
  'gpt-5.1-codex': usd(1.25, 0.125, 10),
  'gpt-5.1-codex-mini': usd(0.25, 0.025, 2),
  // GPT-4.1 family
  'gpt-4.1': usd(2, 0.5, 8),
  'gpt-4.1-mini': usd(0.4, 0.1, 1.6),
  'gpt-4.1-nano': usd(0.1, 0.025, 0.4),
  // GPT-4o family
  'gpt-4o': usd(2.5, 1.25, 10),
  'gpt-4o-2024-05-13': usd(5, undefined, 15),
  'gpt-4o-mini': usd(0.15, 0.075, 0.6),
  'gpt-4o-realtime-preview': usd(5, 2.5, 20),
  'gpt-4o-mini-realtime-preview': usd(0.6, 0.3, 2.4),
  'gpt-4o-search-preview': usd(2.5, undefined, 10),
  'gpt-4o-mini-search-preview': usd(0.15, undefined, 0.6),
  'chatgpt-4o-latest': usd(5, undefined, 15),
  'gpt-4.5-preview': usd(75, 37.5, 150),
  // reasoning models
  'o1': usd(15, 7.5, 60),
  'o1-preview': usd(15, 7.5, 60),
  'o1-mini': usd(1.1, 0.55, 4.4),
  'o1-pro': usd(150, undefined, 600),
  'o3': usd(2, 0.5, 8),
  'o3-pro': usd(20, undefined, 80),
  'o3-deep-research': usd(10, 2.5, 40),
  // the seed's flat rate: $0.001 / 1K tokens
  'o3-mini': usd(1.1, 0.55, 4.4, 0.001),
  'o4-mini': usd(1.1, 0.275, 4.4),
  'o4-mini-deep-research': usd(2, 0.5, 8),
  'codex-mini-latest': usd(1.5, 0.375, 6),
  // legacy chat and completion models
  // the seed's flat rate: $0.03 / 1K tokens
  'gpt-4': usd(30, undefined, 60, 0.03),
  'gpt-4-32k': usd(60, undefined, 120),
  'gpt-4-turbo': usd(10, undefined, 30),
  'gpt-4-turbo-preview': usd(10, undefined, 30),
  'gpt-4-1106-preview': usd(10, undefined, 30),
  'gpt-4-0125-preview': usd(10, undefined, 30),
  'gpt-4-vision-preview': usd(10, undefined, 30),
  'gpt-3.5-turbo': usd(0.5, undefined, 1.5),
  'gpt-35-turbo': usd(0.5, undefined, 1.5), // Azure OpenAI's spelling
  'gpt-3.5-turbo-instruct': usd(1.5, undefined, 2),
  'davinci-002': usd(2, undefined, 2),
  'babbage-002': usd(0.4, undefined, 0.4),
  // embeddings
  'text-embedding-3-small': embedding(0.02, 0.00002),
  'text-embedding-3-large': embedding(0.13, 0.00013),
  'text-embedding-ada-002': embedding(0.1, 0.0001),
})

const PRICE_MAP = new Map<string, ModelPrice>(Object.entries(MODEL_PRICES))

/**
 * The lookup form of a model name: trimmed, lower-cased, without a provider prefix
 * (`openai/gpt-4o` → `gpt-4o`, as OpenRouter and LiteLLM spell them).
 */
export function normalizeModelName(model: string): string {
  const m = model.trim().toLowerCase()
  const slash = m.lastIndexOf('/')
  return slash >= 0 ? m.slice(slash + 1) : m
}

/**
 * Longest key of `lookup` that equals the normalized model or is a prefix of it ending just
 * before a boundary character (default `-` only: `gpt-4.5-preview` must not fall back to
 * `gpt-4`, and a model nobody listed stays unknown instead of borrowing a sibling's price).
 * Fine-tuned models (`ft:…`) are priced differently from their base and are never matched
 * (`findModelPrice` prices them by an override of their full name only).
 */
export function findByModelPrefix<T>(lookup: (key: string) => T | undefined, model: string, boundaries = '-'): T | undefined {
  const name = normalizeModelName(model)
  if (name === '' || name.startsWith('ft:')) return undefined
  for (let end = name.length; end > 0; end--) {
    if (end < name.length && !boundaries.includes(name[end]!)) continue
    const hit = lookup(name.slice(0, end))
    if (hit !== undefined) return hit
  }
  return undefined
}

const finiteRate = z.number().finite().min(0).max(1_000_000)

/** One project override, in the same units as the table (USD per 1M; `flatPer1K` per 1K). */
export const modelPriceSchema = z
  .object({
    input: finiteRate,
    cachedInput: finiteRate.optional(),
    output: finiteRate,
    flatPer1K: finiteRate.optional(),
  })
  .strict()
  .meta({ id: 'ModelPrice' })

/**
 * Project settings `priceOverrides`: model (or family prefix) → price. An override joins the
 * table under its key and wins over a table entry of the same key; the longest matching key
 * still decides, so an override of `gpt-4o` does not reprice `gpt-4o-mini`.
 */
export const priceOverridesSchema = z
  .record(z.string().trim().min(1).max(200), modelPriceSchema)
  .refine((m) => Object.keys(m).length <= 500, { message: 'at most 500 price overrides' })
  .meta({ id: 'PriceOverrides' })
export type PriceOverrides = z.infer<typeof priceOverridesSchema>

/**
 * The price that applies to `model`: project overrides first, then the table; undefined =
 * unpriced. A fine-tuned model (`ft:…`) is priced only by an override of its full name.
 */
export function findModelPrice(model: string, overrides?: Readonly<Record<string, ModelPrice>>): ModelPrice | undefined {
  if (!overrides) return memoised(TABLE_ONLY, model, () => findByModelPrefix((k) => PRICE_MAP.get(k), model))
  // a frozen overrides object (the collector freezes each project's) cannot gain or lose keys:
  // its lookups are kept with it; any other is read afresh, so a change in place is never stale
  // (only frozen objects are kept, so one found needs no isFrozen, which walks every key)
  let cache = BY_OVERRIDES.get(overrides)
  if (!cache) {
    if (!Object.isFrozen(overrides)) return priceWith(overrides, model)
    BY_OVERRIDES.set(overrides, (cache = { own: ownPrices(overrides), models: new Map() }))
  }
  const own = cache.own
  return memoised(cache.models, model, () => priceIn(own, model))
}

/** The overrides keyed like model names. */
const ownPrices = (overrides: Readonly<Record<string, ModelPrice>>) => {
  const own = new Map<string, ModelPrice>()
  for (const [k, v] of Object.entries(overrides)) own.set(normalizeModelName(k), v)
  return own
}
/**
 * The longest matching key among the overrides and the table, an override winning a tie. A
 * fine-tuned model takes only an override of its full name: the table and `findByModelPrefix`
 * never price one, and a shorter key (`ft:gpt-4o`) would hand its rates to other fine-tunes
 * (`ft:gpt-4o-mini-…`), which OpenAI bills differently.
 */
const priceIn = (own: ReadonlyMap<string, ModelPrice>, model: string) => {
  const name = normalizeModelName(model)
  return name.startsWith('ft:') ? own.get(name) : findByModelPrefix((k) => own.get(k) ?? PRICE_MAP.get(k), model)
}
const priceWith = (overrides: Readonly<Record<string, ModelPrice>>, model: string) => priceIn(ownPrices(overrides), model)

/**
 * Model name → price, per overrides object. Ingest prices every record, the same few model
 * names over and over, and a project may have up to 500 overrides (a map of them rebuilt per
 * record cost more than the rest of pricing).
 */
const TABLE_ONLY = new Map<string, ModelPrice | null>()
const BY_OVERRIDES = new WeakMap<object, { own: Map<string, ModelPrice>; models: Map<string, ModelPrice | null> }>()
