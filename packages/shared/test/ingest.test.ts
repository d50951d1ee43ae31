import { describe, expect, it } from 'vitest'
import { acceptLlmRecord, API_DATE_TIME_PATTERN, fractionMicros, isoDateSchema, jsonBytesBound, llmRecordSchema, MAX_METADATA_BYTES, MAX_METADATA_DEPTH, MAX_TEXT_BYTES, nestedWithin, parseLlmRecord, timeProblem } from '@llmguard/shared'

// parseLlmRecord's fast path must give the schema's answer for every record it accepts, and accept
// the ordinary valid records (or ingest silently loses its speed). Inputs are JSON, as bodies are.

const base = {
  id: '46d9a454-e3b5-4ce8-aea2-02e568a83d1f',
  prompt: 'System: You are a helpful assistant.\nUser: summarise this, please',
  response: '1. one\n2. two',
  model: 'gpt-4o-mini',
  endpoint: 'chat.completions',
  latency: 2685,
  status: 'success',
  timestamp: '2026-11-21T12:41:19.393Z',
  userId: 'user_4xzc',
  metadata: { feature: 'chat', env: 'production', nested: { a: [1, 2, { b: null }] } },
  promptTokens: 956,
  completionTokens: 225,
}

/** Values to try per field, valid and invalid, at the schema's boundaries. `undefined` = key left out. */
const VARIANTS: Record<string, unknown[]> = {
  id: [undefined, null, '', 'not-a-uuid', '46D9A454-E3B5-4CE8-AEA2-02E568A83D1F', '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-ffff-ffff-ffffffffffff', '46d9a454-e3b5-9ce8-aea2-02e568a83d1f', '46d9a454-e3b5-4ce8-cea2-02e568a83d1f', 7],
  prompt: [undefined, null, '', 5, 'é'.repeat(10), '😀 emoji', 'a'.repeat(Math.floor(MAX_TEXT_BYTES / 3)), 'a'.repeat(MAX_TEXT_BYTES),
    'a'.repeat(MAX_TEXT_BYTES + 1), 'é'.repeat(MAX_TEXT_BYTES / 2), 'é'.repeat(MAX_TEXT_BYTES / 2 + 1), '\u0000 nul', '\ud800 lone'],
  response: [undefined, null, '', 3, 'ok', 'é'.repeat(MAX_TEXT_BYTES / 2 + 1)],
  model: [undefined, null, '', 'x', 'm'.repeat(200), 'm'.repeat(201), 4, 'é'.repeat(200)],
  latency: [undefined, null, -1, 0, 1.5, 86_400_000, 86_400_001, '5', 1e21, -0],
  tokens: [undefined, null, -1, 0, 100_000_000, 100_000_001, 2.5, '10'],
  promptTokens: [undefined, null, -1, 0, 10, 100_000_000, 100_000_001, 0.5],
  completionTokens: [undefined, -1, 0, 7, 100_000_001],
  cachedTokens: [undefined, null, -1, 0, 10, 11, 5000],
  reasoningTokens: [undefined, 0, 7, 8, 300],
  status: [undefined, null, 'success', 'error', 'failed', ''],
  error: [undefined, null, 'boom', [], {}, { type: 'server_error', message: 'x' }, { type: 'server_error', message: 'x', status: 500 },
    { type: 't', message: 'm', status: 99 }, { type: 't', message: 'm', status: 600 }, { type: 't', message: 'm', status: 500.5 },
    { type: 't'.repeat(200), message: 'm'.repeat(10_000) }, { type: 't'.repeat(201), message: 'm' }, { type: 't', message: 'm'.repeat(10_001) },
    { type: 't', message: 'm', extra: true }, { type: 1, message: 'm' }],
  timestamp: [undefined, null, '', '2026-11-21T12:41:19Z', '2026-11-21T12:41:19.393+02:00', '2026-11-21T12:41:19', '2026-11-21',
    '2026-02-29T00:00:00Z', '2024-02-29T00:00:00Z', '2026-11-21T24:00:00Z', 1764000000000,
    // the range PostgreSQL and four-digit ISO strings share: 1970 to 9999, UTC
    '0000-01-01T00:00:00Z', '1969-12-31T23:59:59.999Z', '1970-01-01T00:00:00Z', '1970-01-01T00:30:00+01:00',
    '9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59-12:00'],
  endpoint: [undefined, null, '', 'e', 'e'.repeat(100), 'e'.repeat(101)],
  requestedModel: [undefined, null, '', 'gpt-4o', 'r'.repeat(200), 'r'.repeat(201)],
  timeToFirstToken: [undefined, null, -1, 0, 86_400_000, 86_400_001, 3.3],
  stream: [undefined, null, true, false, 'true', 0],
  userId: [undefined, null, '', 'u', 'u'.repeat(256), 'u'.repeat(257)],
  metadata: [undefined, null, [], 'x', {}, { a: 1 }, { nested: { deep: [1, 'two'] } }, { k: 'v'.repeat(MAX_METADATA_BYTES - 8) },
    { k: 'v'.repeat(MAX_METADATA_BYTES - 7) }, { k: 'é'.repeat(MAX_METADATA_BYTES / 2 - 5) }, { k: 'é'.repeat(MAX_METADATA_BYTES / 2 - 4) },
    // within the size bound (accepted without measuring), and escapes of 6 bytes each at the limit
    { k: 'v'.repeat(2700) }, { k: '\u0001'.repeat(2729) }, { k: '\u0001'.repeat(2730) },
    // many small fields adding up to just under and just over the limit
    Object.fromEntries(Array.from({ length: 1365 }, (_, i) => [`k${String(i).padStart(4, '0')}`, 1])),
    Object.fromEntries(Array.from({ length: 1366 }, (_, i) => [`k${String(i).padStart(4, '0')}`, 1])),
    // nested deeper than the bound looks
    JSON.parse('{"a":'.repeat(40) + '1' + '}'.repeat(40)), { list: [null, 1.5e-300, -0, true, 'x', [[], {}]] }],
}

/** A small deterministic generator (mulberry32), so a failure names a case that comes back. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const asJson = (v: unknown) => JSON.parse(JSON.stringify(v))

function withFields(changes: Record<string, unknown>) {
  const r: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete r[k]
    else r[k] = v
  }
  return asJson(r)
}

function agree(input: unknown) {
  const fast = acceptLlmRecord(input)
  const schema = llmRecordSchema.safeParse(input)
  if (fast !== null) {
    expect(schema.success, JSON.stringify(input).slice(0, 300)).toBe(true)
    expect(fast).toEqual(schema.data)
  }
  const parsed = parseLlmRecord(input)
  expect(parsed.success).toBe(schema.success)
  if (parsed.success) expect(parsed.data).toEqual(schema.data)
  else expect(parsed.error.issues).toEqual(schema.error!.issues)
  return fast !== null
}

describe('parseLlmRecord: the schema, fast for valid records', () => {
  it('accepts ordinary valid records on the fast path, with the schema output (defaults and tokens filled in)', () => {
    const minimal = asJson({ prompt: 'hi', model: 'gpt-4o', latency: 12 })
    expect(acceptLlmRecord(minimal)).toEqual({ prompt: 'hi', response: '', model: 'gpt-4o', latency: 12, status: 'success', tokens: 0 })
    expect(agree(minimal)).toBe(true)
    expect(agree(withFields({}))).toBe(true)
    expect(acceptLlmRecord(withFields({}))!.tokens).toBe(956 + 225)
    expect(agree(withFields({ tokens: 5, error: { type: 't', message: 'm', status: 500 }, status: 'error', stream: true }))).toBe(true)
  })

  it('gives the schema answer for every value of every field at its boundaries', () => {
    for (const [field, values] of Object.entries(VARIANTS)) {
      for (const value of values) agree(withFields({ [field]: value }))
    }
  })

  it('gives the schema answer for 3,000 random combinations of those values', () => {
    const next = random(20261125)
    const fields = Object.keys(VARIANTS)
    let fastAccepted = 0
    for (let i = 0; i < 3000; i++) {
      const changes: Record<string, unknown> = {}
      for (let n = 1 + Math.floor(next() * 4); n > 0; n--) {
        const field = fields[Math.floor(next() * fields.length)]!
        changes[field] = VARIANTS[field]![Math.floor(next() * VARIANTS[field]!.length)]
      }
      if (agree(withFields(changes))) fastAccepted++
    }
    // a good share of the combinations stay valid, and those take the fast path
    expect(fastAccepted).toBeGreaterThan(300)
  })

  it('bounds the JSON size of parsed values from above (metadata under the bound needs no measuring)', () => {
    const next = random(20261206)
    const pieces = ['a', 'é', '\u0000', '\n', '"', '\\', '\ud83d\ude00', '\ud800', '\udfff', '\u2028', ' ']
    const value = (depth: number): unknown => {
      const kind = Math.floor(next() * (depth > 4 ? 4 : 6))
      if (kind === 0) return Array.from({ length: Math.floor(next() * 12) }, () => pieces[Math.floor(next() * pieces.length)]).join('')
      if (kind === 1) return [0, -0, 1e21, -1.7976931348623157e308, 5e-324, -2.2250738585072014e-308, 123456789.123][Math.floor(next() * 7)]
      if (kind === 2) return next() < 0.5
      if (kind === 3) return null
      if (kind === 4) return Array.from({ length: Math.floor(next() * 4) }, () => value(depth + 1))
      return Object.fromEntries(Array.from({ length: Math.floor(next() * 4) }, () => [value(5) as string, value(depth + 1)]).filter(([k]) => typeof k === 'string'))
    }
    for (let i = 0; i < 2000; i++) {
      const v = value(0)
      const bytes = Buffer.byteLength(JSON.stringify(v))
      expect(jsonBytesBound(v, Infinity), JSON.stringify(v)).toBeGreaterThanOrEqual(bytes)
    }
    // past the limit, too deep, or not what JSON.parse makes: no bound (the exact measure decides)
    expect(jsonBytesBound({ k: 'v'.repeat(100) }, 50)).toBe(Infinity)
    expect(jsonBytesBound(JSON.parse('['.repeat(40) + ']'.repeat(40)), Infinity)).toBe(Infinity)
    expect(jsonBytesBound({ at: new Date(0) }, Infinity)).toBe(Infinity)
    expect(jsonBytesBound({ n: 1n }, Infinity)).toBe(Infinity)
  })

  it('strips unknown keys as the schema does, and leaves non-objects and a __proto__ key in metadata to the schema', () => {
    const extra = withFields({ extra: 'stripped', error: { type: 't', message: 'm', also: 1 }, status: 'error' })
    expect(agree(extra)).toBe(true)
    const parsed = parseLlmRecord(extra)
    expect(parsed.success && 'extra' in parsed.data).toBe(false)
    expect(parsed.success && parsed.data.error).toEqual({ type: 't', message: 'm' })
    for (const input of [null, [], 'record', 42, JSON.parse('{"prompt":"p","model":"m","latency":1,"metadata":{"__proto__":{"x":1}}}')]) {
      expect(acceptLlmRecord(input)).toBeNull()
      agree(input)
    }
  })

  it('refuses a timestamp outside 1970–9999 (UTC) with a message naming the range, on both paths', () => {
    for (const timestamp of ['0000-01-01T00:00:00Z', '1969-12-31T23:59:59Z', '9999-12-31T23:59:59-12:00']) {
      const input = { prompt: 'p', model: 'gpt-4o', latency: 1, timestamp }
      expect(acceptLlmRecord(input)).toBeNull()
      const parsed = parseLlmRecord(input)
      expect(parsed.success).toBe(false)
      expect(!parsed.success && parsed.error.issues[0]).toMatchObject({ path: ['timestamp'], message: 'must be between 1970-01-01 and 9999-12-31 (UTC)' })
    }
    for (const timestamp of ['1970-01-01T00:00:00Z', '9999-12-31T11:59:59-12:00']) {
      expect(acceptLlmRecord({ prompt: 'p', model: 'gpt-4o', latency: 1, timestamp })?.timestamp).toBe(timestamp)
    }
  })

  it('refuses UTC offsets PostgreSQL refuses (16 hours or more) and fractions past nine digits, on both paths', () => {
    const refused = [
      ['2026-01-01T00:00:00+16:00', 'must have a UTC offset within ±15:59'],
      ['2026-01-01T00:00:00-23:59', 'must have a UTC offset within ±15:59'],
      ['2026-01-01T00:00:00.1234567890Z', 'must have at most 9 digits of fractional seconds'],
      [`2026-01-01T00:00:00.${'1'.repeat(200)}+01:00`, 'must have at most 9 digits of fractional seconds'],
    ] as const
    for (const [timestamp, message] of refused) {
      const input = { prompt: 'p', model: 'gpt-4o', latency: 1, timestamp }
      expect(acceptLlmRecord(input)).toBeNull()
      const parsed = parseLlmRecord(input)
      expect(!parsed.success && parsed.error.issues).toMatchObject([{ path: ['timestamp'], message }])
    }
    for (const timestamp of ['9999-12-31T23:59:59.9999995Z', '9999-12-31T08:00:59.9999999-15:59']) {
      // PostgreSQL rounds to microseconds: these are the first instant of the year 10000
      expect(acceptLlmRecord({ prompt: 'p', model: 'gpt-4o', latency: 1, timestamp })).toBeNull()
      const parsed = parseLlmRecord({ prompt: 'p', model: 'gpt-4o', latency: 1, timestamp })
      expect(!parsed.success && parsed.error.issues).toMatchObject([{ path: ['timestamp'], message: 'must be between 1970-01-01 and 9999-12-31 (UTC)' }])
    }
    for (const timestamp of ['2026-01-01T00:00:00+15:59', '2026-01-01T00:00:00-15:59', '2026-01-01T00:00:00.123456789Z', '2026-01-01T00:00:00.5-05:30', '9999-12-31T23:59:59.9999994Z', '1969-12-31T23:59:59.9999995Z']) {
      expect(acceptLlmRecord({ prompt: 'p', model: 'gpt-4o', latency: 1, timestamp })?.timestamp).toBe(timestamp)
      expect(parseLlmRecord({ prompt: 'p', model: 'gpt-4o', latency: 1, timestamp }).success).toBe(true)
    }
  })
})

describe('date-time filters', () => {
  it('give one issue for a string that is not a date-time, and the rule broken for one that is', () => {
    const issues = (v: string) => {
      const parsed = isoDateSchema.safeParse(v)
      return parsed.success ? [] : parsed.error.issues.map((i) => i.message)
    }
    expect(issues('yesterday')).toHaveLength(1)
    expect(issues('2026-02-30T00:00:00+16:00')).toHaveLength(1)
    expect(issues('2026-01-01T00:00:00+16:00')).toEqual(['must have a UTC offset within ±15:59'])
    expect(issues('2026-01-01T00:00:00.0000000001Z')).toEqual(['must have at most 9 digits of fractional seconds'])
    expect(issues('2026-01-01T00:00:00.000000001Z')).toEqual([])
    expect(timeProblem('yesterday')).toBe('must be an ISO 8601 date-time with a UTC offset')
  })

  it('publish a pattern that takes the strings the validators take (format, offset, fraction)', () => {
    const pattern = new RegExp(API_DATE_TIME_PATTERN)
    const samples = [
      '2026-01-01T00:00:00Z', '2026-01-01T00:00:00+15:59', '2026-01-01T00:00:00-15:59', '2026-01-01T00:00:00+16:00',
      '2026-01-01T00:00:00-23:59', '2026-01-01T00:00:00.123456789Z', '2026-01-01T00:00:00.1234567890Z', '2026-01-01T00:00:00.Z',
      '2024-02-29T12:00:00+01:00', '2026-02-29T12:00:00Z', '2026-01-01 00:00:00Z', 'yesterday', '2026-01-01T24:00:00Z',
    ]
    for (const v of samples) expect([v, pattern.test(v)]).toEqual([v, isoDateSchema.safeParse(v).success])
    // what it leaves to the description: the UTC year range
    expect(pattern.test('1969-12-31T23:59:59Z')).toBe(true)
    expect(isoDateSchema.safeParse('1969-12-31T23:59:59Z').success).toBe(false)
  })

  it('round a fraction as PostgreSQL does: to microseconds, halves to even', () => {
    expect([fractionMicros('2026-01-01T00:00:00Z'), fractionMicros('2026-01-01T00:00:00.5Z'), fractionMicros('2026-01-01T00:00:00.0000005+01:00')]).toEqual([0, 500_000, 0])
    expect([fractionMicros('2026-01-01T00:00:00.0000015Z'), fractionMicros('2026-01-01T00:00:00.9999995Z'), fractionMicros('2026-01-01T00:00:00.123456789Z')]).toEqual([2, 1_000_000, 123_457])
  })
})

describe('metadata depth', () => {
  const nest = (levels: number) => {
    let v: Record<string, unknown> = {}
    for (let i = 1; i < levels; i++) v = { d: v }
    return v
  }
  it('counts nested objects and arrays, without recursion', () => {
    expect(nestedWithin({ a: 1, b: 'x' }, 1)).toBe(true)
    expect(nestedWithin({ a: [1] }, 1)).toBe(false)
    expect(nestedWithin(nest(MAX_METADATA_DEPTH), MAX_METADATA_DEPTH)).toBe(true)
    expect(nestedWithin(nest(MAX_METADATA_DEPTH + 1), MAX_METADATA_DEPTH)).toBe(false)
    expect(nestedWithin(nest(100_000), MAX_METADATA_DEPTH)).toBe(false)
  })
  it('a record with metadata one level too deep is refused by both validation paths, saying why', () => {
    const base = { prompt: 'p', model: 'm', latency: 1 }
    expect(parseLlmRecord({ ...base, metadata: nest(MAX_METADATA_DEPTH) }).success).toBe(true)
    const deep = { ...base, metadata: nest(MAX_METADATA_DEPTH + 1) }
    expect(acceptLlmRecord(deep)).toBeNull()
    const parsed = llmRecordSchema.safeParse(deep)
    expect(parsed.success).toBe(false)
    expect(parsed.error!.issues.map((i) => i.message)).toEqual([`metadata must nest at most ${MAX_METADATA_DEPTH} levels deep`])
  })
})
