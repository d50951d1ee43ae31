import { describe, expect, it } from 'vitest'
import { MODEL_PRICES, computeCost, priceOverridesSchema, type CostInput } from '@llmguard/shared'

describe('computeCost with the token split', () => {
  it('(prompt − cached)·input + cached·cachedInput + completion·output', () => {
    // gpt-4o: 2.50 / 1.25 / 10.00 per 1M → (600·2.5 + 400·1.25 + 500·10) / 1e6
    expect(computeCost({ model: 'gpt-4o-2024-08-06', tokens: 1500, promptTokens: 1000, cachedTokens: 400, completionTokens: 500 })).toBe(0.007)
    // gpt-4o-mini: 1M in + 1M out = 0.15 + 0.60
    expect(computeCost({ model: 'gpt-4o-mini', promptTokens: 1_000_000, completionTokens: 1_000_000 })).toBe(0.75)
    // gpt-5-nano: (2345·0.05 + 10000·0.005 + 6789·0.4) / 1e6
    expect(computeCost({ model: 'gpt-5-nano', promptTokens: 12_345, cachedTokens: 10_000, completionTokens: 6789 })).toBe(0.00288285)
    // tiny amounts carry no float noise
    expect(computeCost({ model: 'gpt-4o-mini', promptTokens: 3, completionTokens: 7 })).toBe(0.00000465)
  })

  it('never adds reasoning tokens on top of completion tokens', () => {
    const base: CostInput = { model: 'o3-mini', promptTokens: 100, completionTokens: 2000 }
    // (100·1.10 + 2000·4.40) / 1e6
    expect(computeCost(base)).toBe(0.00891)
    expect(computeCost({ ...base, reasoningTokens: 1500 })).toBe(0.00891)
    expect(computeCost({ ...base, reasoningTokens: 2000, tokens: 2100 })).toBe(0.00891)
  })

  it('bills cached tokens at the input rate when the model has no cache discount', () => {
    expect(computeCost({ model: 'gpt-4', promptTokens: 1000, cachedTokens: 1000, completionTokens: 0 })).toBe(0.03)
    expect(computeCost({ model: 'gpt-4', promptTokens: 1000, completionTokens: 1000 })).toBe(0.09)
  })

  it('never bills a negative uncached count when cached exceeds prompt', () => {
    expect(computeCost({ model: 'gpt-4o', promptTokens: 100, cachedTokens: 500, completionTokens: 0 })).toBe(0.000125)
  })

  it('infers the missing side of the split from tokens', () => {
    // completion = 1500 − 1000
    expect(computeCost({ model: 'gpt-4o', tokens: 1500, promptTokens: 1000 })).toBe(0.0075)
    // prompt = 1500 − 500
    expect(computeCost({ model: 'gpt-4o', tokens: 1500, completionTokens: 500 })).toBe(0.0075)
    // no total: the missing side is 0 (embeddings report prompt tokens only)
    expect(computeCost({ model: 'text-embedding-3-large', promptTokens: 1_000_000 })).toBe(0.13)
  })

  it('an explicit zero split costs exactly $0', () => {
    expect(computeCost({ model: 'gpt-4o', tokens: 0, promptTokens: 0, completionTokens: 0 })).toBe(0)
  })

  it('equals exact integer arithmetic on random records (every table model)', () => {
    let seed = 42
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    for (const [model, p] of Object.entries(MODEL_PRICES)) {
      for (let i = 0; i < 50; i++) {
        const promptTokens = rand(2_000_000)
        const cachedTokens = rand(promptTokens + 1)
        const completionTokens = rand(500_000)
        // every listed rate has at most 3 decimals: ×1000 makes it an integer number of nano-dollars per token
        const nano = (r: number) => Math.round(r * 1000)
        const n =
          (promptTokens - cachedTokens) * nano(p.input) + cachedTokens * nano(p.cachedInput ?? p.input) + completionTokens * nano(p.output)
        expect(computeCost({ model, promptTokens, cachedTokens, completionTokens }), model).toBe(n / 1e9)
      }
    }
  })
})

describe('computeCost with only a total', () => {
  it("uses the seed's flat rates: GPT-4 $0.03/1K, o3-mini $0.001/1K", () => {
    expect(computeCost({ model: 'gpt-4', tokens: 1000 })).toBe(0.03)
    expect(computeCost({ model: 'gpt-4-0613', tokens: 1234 })).toBe(0.03702)
    expect(computeCost({ model: 'o3-mini', tokens: 1500 })).toBe(0.0015)
    expect(computeCost({ model: 'o3-mini-2025-01-31', tokens: 7 })).toBe(0.000007)
  })

  it('prices embeddings exactly (every token is an input token)', () => {
    expect(computeCost({ model: 'text-embedding-3-small', tokens: 1_000_000 })).toBe(0.02)
    expect(computeCost({ model: 'text-embedding-ada-002', tokens: 2500 })).toBe(0.00025)
    expect(computeCost({ model: 'text-embedding-3-large', tokens: 3 })).toBe(0.00000039)
  })

  it('is unpriced (null, not $0) for a chat model without a flat rate: no guessed split', () => {
    expect(computeCost({ model: 'gpt-4o', tokens: 1000 })).toBeNull()
    expect(computeCost({ model: 'o1', tokens: 1 })).toBeNull()
  })

  it('no usage reported: null for a successful call, $0 for a failed one', () => {
    expect(computeCost({ model: 'gpt-4', tokens: 0 })).toBeNull()
    expect(computeCost({ model: 'gpt-4' })).toBeNull()
    expect(computeCost({ model: 'gpt-4', tokens: 0, status: 'success' })).toBeNull()
    expect(computeCost({ model: 'gpt-4', tokens: 0, status: 'error' })).toBe(0)
  })

  it('ignores garbage counts instead of producing NaN or negative costs', () => {
    expect(computeCost({ model: 'gpt-4', tokens: -5, status: 'error' })).toBe(0)
    expect(computeCost({ model: 'gpt-4o', promptTokens: Number.NaN, completionTokens: 1_000_000 })).toBe(10)
  })
})

describe('computeCost: unknown models and overrides', () => {
  it('an unknown model is unpriced whatever the tokens', () => {
    expect(computeCost({ model: 'my-llm', tokens: 1000, promptTokens: 600, completionTokens: 400 })).toBeNull()
    expect(computeCost({ model: 'my-llm', tokens: 0, status: 'error' })).toBeNull()
    expect(computeCost({ model: 'ft:gpt-4o-mini:acme::x', promptTokens: 10, completionTokens: 10 })).toBeNull()
  })

  it('project overrides win over the table and price unknown models', () => {
    const overrides = { 'gpt-4o': { input: 1, output: 2 }, 'my-llm': { input: 0.5, output: 1.5, flatPer1K: 0.002 } }
    // no cachedInput in the override: cached tokens at the override's input rate
    expect(computeCost({ model: 'gpt-4o', promptTokens: 1_000_000, cachedTokens: 500_000, completionTokens: 1_000_000 }, overrides)).toBe(3)
    expect(computeCost({ model: 'gpt-4o-mini', promptTokens: 1_000_000, completionTokens: 0 }, overrides)).toBe(0.15)
    expect(computeCost({ model: 'my-llm', promptTokens: 2000, completionTokens: 1000 }, overrides)).toBe(0.0025)
    expect(computeCost({ model: 'my-llm', tokens: 1500 }, overrides)).toBe(0.003)
    // an override can give a chat model a flat rate the table refuses to guess
    expect(computeCost({ model: 'gpt-4o', tokens: 1000 }, { 'gpt-4o': { input: 2.5, output: 10, flatPer1K: 0.005 } })).toBe(0.005)
  })

  it('an override on the full name prices a fine-tuned model (docs/pricing.md example), others stay unpriced', () => {
    // as the collector holds a project's settings: parsed, then frozen
    const overrides = Object.freeze(priceOverridesSchema.parse({ 'ft:gpt-4o-mini-2024-07-18:acme::a1b2': { input: 0.3, cachedInput: 0.15, output: 1.2 } }))
    const record = { model: 'ft:gpt-4o-mini-2024-07-18:acme::a1b2', promptTokens: 1000, cachedTokens: 1000, completionTokens: 0 }
    expect(computeCost(record, overrides)).toBe(0.00015)
    expect(computeCost({ ...record, cachedTokens: 0, completionTokens: 1000 }, overrides)).toBe(0.0015)
    expect(computeCost({ ...record, model: 'ft:gpt-4o-mini-2024-07-18:acme::other' }, overrides)).toBeNull()
    expect(computeCost(record)).toBeNull()
  })
})
