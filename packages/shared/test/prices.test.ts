import { describe, expect, it } from 'vitest'
import { MODEL_PRICES, findModelPrice, normalizeModelName, priceOverridesSchema } from '@llmguard/shared'

describe('price table', () => {
  it('lists every model family the spec names, with sane rates', () => {
    for (const model of [
      'gpt-4o', 'gpt-4o-mini', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-4.1-nano', 'gpt-5', 'gpt-5-mini', 'gpt-5-nano',
      'o1', 'o3', 'o3-mini', 'o4-mini', 'gpt-3.5-turbo', 'gpt-4', 'text-embedding-3-small', 'text-embedding-3-large',
      'text-embedding-ada-002',
    ]) {
      const p = MODEL_PRICES[model]
      expect(p, model).toBeDefined()
      expect(p!.input).toBeGreaterThan(0)
      expect(p!.output).toBeGreaterThanOrEqual(0)
      // caching is a discount, never a surcharge
      if (p!.cachedInput !== undefined) expect(p!.cachedInput).toBeLessThanOrEqual(p!.input)
    }
  })

  it("keeps the seed's flat rates: GPT-4 $0.03/1K, o3-mini $0.001/1K", () => {
    expect(MODEL_PRICES['gpt-4']!.flatPer1K).toBe(0.03)
    expect(MODEL_PRICES['o3-mini']!.flatPer1K).toBe(0.001)
  })

  it('embeddings: the flat rate is exactly the input rate (every token is an input token)', () => {
    for (const m of ['text-embedding-3-small', 'text-embedding-3-large', 'text-embedding-ada-002']) {
      const p = MODEL_PRICES[m]!
      expect(p.output).toBe(0)
      expect(p.flatPer1K! * 1000).toBeCloseTo(p.input, 12)
    }
  })

  it('every key is already in normalized form (lower case, no provider prefix)', () => {
    for (const key of Object.keys(MODEL_PRICES)) expect(normalizeModelName(key)).toBe(key)
  })
})

describe('findModelPrice: longest prefix at a "-" boundary', () => {
  const cases: [string, string | undefined][] = [
    ['gpt-4o', 'gpt-4o'],
    ['gpt-4o-2024-08-06', 'gpt-4o'],
    ['gpt-4o-2024-05-13', 'gpt-4o-2024-05-13'], // a snapshot with its own price
    ['gpt-4o-mini', 'gpt-4o-mini'],
    ['gpt-4o-mini-2024-07-18', 'gpt-4o-mini'],
    ['gpt-4.1-nano-2025-04-14', 'gpt-4.1-nano'],
    ['gpt-4.1-2025-04-14', 'gpt-4.1'],
    ['gpt-5-2025-08-07', 'gpt-5'],
    ['gpt-5-mini-2025-08-07', 'gpt-5-mini'],
    ['gpt-5-chat-latest', 'gpt-5'],
    ['o3-mini-2025-01-31', 'o3-mini'],
    ['o3-2025-04-16', 'o3'],
    ['o1-mini', 'o1-mini'],
    ['o1-2024-12-17', 'o1'],
    ['o4-mini-2025-04-16', 'o4-mini'],
    ['gpt-4-0613', 'gpt-4'],
    ['gpt-4-turbo-2024-04-09', 'gpt-4-turbo'],
    ['gpt-3.5-turbo-0125', 'gpt-3.5-turbo'],
    ['GPT-4o-Mini', 'gpt-4o-mini'],
    ['openai/gpt-4o', 'gpt-4o'],
    ['  gpt-4o  ', 'gpt-4o'],
    ['text-embedding-3-small', 'text-embedding-3-small'],
    // unknown stays unknown: no borrowing across a non-"-" boundary, no fine-tunes, no strangers
    ['gpt-4.5', undefined],
    ['gpt-4o1', undefined],
    ['gpt-4omini', undefined],
    ['o3mini', undefined],
    ['ft:gpt-4o-mini-2024-07-18:acme::abc123', undefined],
    ['claude-3-5-sonnet', undefined],
    ['', undefined],
    ['gpt', undefined],
  ]
  it.each(cases)('%s → %s', (model, key) => {
    expect(findModelPrice(model)).toBe(key === undefined ? undefined : MODEL_PRICES[key])
  })

  it('gpt-4o-mini is never priced as gpt-4o', () => {
    expect(findModelPrice('gpt-4o-mini-2024-07-18')!.input).toBe(0.15)
    expect(findModelPrice('gpt-4o-2024-08-06')!.input).toBe(2.5)
  })
})

describe('project overrides', () => {
  const overrides = {
    'gpt-4o': { input: 1, output: 2 },
    'My-Local-Model': { input: 0.5, cachedInput: 0.1, output: 0.5, flatPer1K: 0.0005 },
    'azure/gpt-35-turbo-16k': { input: 3, output: 4 },
  }
  it('win over the table for the same key and its snapshots', () => {
    expect(findModelPrice('gpt-4o', overrides)).toBe(overrides['gpt-4o'])
    expect(findModelPrice('gpt-4o-2024-08-06', overrides)).toBe(overrides['gpt-4o'])
  })
  it('do not reprice a longer table key (gpt-4o does not touch gpt-4o-mini)', () => {
    expect(findModelPrice('gpt-4o-mini', overrides)).toBe(MODEL_PRICES['gpt-4o-mini'])
  })
  it('price models the table does not know, keys normalized like model names', () => {
    expect(findModelPrice('my-local-model', overrides)).toBe(overrides['My-Local-Model'])
    expect(findModelPrice('my-local-model-v2', overrides)).toBe(overrides['My-Local-Model'])
    expect(findModelPrice('gpt-35-turbo-16k', overrides)).toBe(overrides['azure/gpt-35-turbo-16k'])
    expect(findModelPrice('my-local', overrides)).toBeUndefined()
  })
  it('give the same answers from a frozen overrides object (looked up once, kept with it) as from a plain one', () => {
    const frozen = Object.freeze({ ...overrides })
    for (let round = 0; round < 3; round++) {
      for (const model of ['gpt-4o', 'gpt-4o-2024-08-06', 'gpt-4o-mini', 'my-local-model-v2', 'gpt-35-turbo-16k', 'my-local', 'no-such-model']) {
        expect(findModelPrice(model, frozen)).toBe(findModelPrice(model, overrides))
      }
    }
  })
  it('are read afresh when changed in place (only a frozen object keeps its lookups)', () => {
    const own: Record<string, { input: number; output: number }> = { 'house-model': { input: 1, output: 1 } }
    expect(findModelPrice('house-model', own)!.input).toBe(1)
    own['house-model'] = { input: 7, output: 7 }
    expect(findModelPrice('house-model', own)!.input).toBe(7)
    delete own['house-model']
    expect(findModelPrice('house-model', own)).toBeUndefined()
  })
  it('stay right past the lookup cache size (more model names than it keeps)', () => {
    const frozen = Object.freeze({ 'gpt-4o': { input: 1, output: 2 } })
    for (let i = 0; i < 2_500; i++) {
      expect(findModelPrice(`unknown-${i}`, frozen)).toBeUndefined()
      if (i % 500 === 0) expect(findModelPrice('gpt-4o', frozen)).toBe(frozen['gpt-4o'])
    }
    expect(findModelPrice('gpt-4o-mini')).toBe(MODEL_PRICES['gpt-4o-mini'])
  })
})

describe('fine-tuned models (ft:…)', () => {
  const ft = 'ft:gpt-4o-mini-2024-07-18:acme::a1b2'
  const overrides = {
    [ft]: { input: 0.3, cachedInput: 0.15, output: 1.2 },
    'ft:gpt-4o': { input: 3.75, output: 15 },
    'gpt-4o-mini': { input: 9, output: 9 },
  }
  it('are priced by an override on their full name, normalized like any key, frozen or not', () => {
    for (const o of [overrides, Object.freeze({ ...overrides })]) {
      for (let round = 0; round < 2; round++) {
        expect(findModelPrice(ft, o)).toBe(overrides[ft])
        expect(findModelPrice(`  openai/${ft.toUpperCase()} `, o)).toBe(overrides[ft])
      }
    }
    expect(findModelPrice('ft:gpt-4o-2024-08-06:acme::x', { 'OpenAI/FT:GPT-4o-2024-08-06:Acme::X': { input: 1, output: 2 } })).toEqual({ input: 1, output: 2 })
  })
  it('take no price from the table, a base-model override or a shorter ft: key', () => {
    for (const o of [undefined, overrides, Object.freeze({ ...overrides })]) {
      // another fine-tune of the same base, a checkpoint, the gpt-4o-mini family under "ft:gpt-4o"
      for (const model of ['ft:gpt-4o-mini-2024-07-18:acme::zz99', `${ft}:ckpt-step-100`, 'ft:gpt-4o-mini', 'ft:gpt-4o-2024-08-06:acme::x', 'ft:gpt-4o-mini-2024-07-18:acme']) {
        expect(findModelPrice(model, o), model).toBeUndefined()
      }
    }
    expect(findModelPrice(ft)).toBeUndefined()
  })
})

describe('priceOverridesSchema', () => {
  it('accepts a settings map', () => {
    const ok = priceOverridesSchema.safeParse({ 'gpt-4o': { input: 2, cachedInput: 1, output: 8 }, x: { input: 0, output: 0, flatPer1K: 0.01 } })
    expect(ok.success).toBe(true)
  })
  it.each([
    [{ 'gpt-4o': { input: -1, output: 1 } }],
    [{ 'gpt-4o': { input: 1 } }],
    [{ 'gpt-4o': { input: 1, output: Number.POSITIVE_INFINITY } }],
    [{ 'gpt-4o': { input: '1', output: 1 } }],
    [{ 'gpt-4o': { input: 1, output: 1, extra: 1 } }],
    [{ '': { input: 1, output: 1 } }],
    [{ 'gpt-4o': null }],
    [Object.fromEntries(Array.from({ length: 501 }, (_, i) => [`m${i}`, { input: 1, output: 1 }]))],
  ])('rejects %j', (value) => {
    expect(priceOverridesSchema.safeParse(value).success).toBe(false)
  })
})
