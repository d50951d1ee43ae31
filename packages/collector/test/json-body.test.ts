import { describe, expect, it } from 'vitest'
import { escapeFree, parseJson, unstorable } from '../src/http/body.js'
import { AppError } from '../src/http/errors.js'

/** What parsing the body's real text gives: parseJson must give exactly this, key order included. */
const reference = (raw: Buffer) => JSON.parse(raw.toString('utf8')) as unknown

/** Deep equality that also tells key order and own `__proto__` keys apart. */
function same(actual: unknown, expected: unknown): void {
  expect(JSON.stringify(actual)).toBe(JSON.stringify(expected))
  expect(actual).toStrictEqual(expected)
}

// a small seeded PRNG: the same cases every run
function prng(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// ASCII, Latin-1, the rest of the BMP, astral characters, and characters JSON escapes
const ALPHABET = ['a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\t', '\u0001', '\u001f', '\u007f', 'é', 'ÿ', '\u0080', '—', '’', '€', '日', '\uffff', '🚀', '𝄞']

function randomString(rnd: () => number): string {
  let s = ''
  const n = Math.floor(rnd() * 12)
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(rnd() * ALPHABET.length)]
  return s
}

function randomValue(rnd: () => number, depth = 0): unknown {
  const r = rnd()
  if (depth > 3 || r < 0.4) return [randomString(rnd), Math.floor(rnd() * 1000) / 7, true, null][Math.floor(rnd() * 4)]
  if (r < 0.7) return Array.from({ length: Math.floor(rnd() * 4) }, () => randomValue(rnd, depth + 1))
  const o: Record<string, unknown> = {}
  for (let i = Math.floor(rnd() * 4); i > 0; i--) o[randomString(rnd)] = randomValue(rnd, depth + 1)
  return o
}

describe('parseJson', () => {
  it('gives what parsing the UTF-8 text gives, for random bodies of every kind of character', () => {
    const rnd = prng(7)
    for (let i = 0; i < 2000; i++) {
      const raw = Buffer.from(JSON.stringify({ records: [randomValue(rnd)], n: i }))
      same(parseJson(raw), reference(raw))
    }
  })

  it('gives keys and \\u escapes past ASCII, a byte-order mark and noncharacters as the UTF-8 text has them', () => {
    const cases = [
      '{"a":1,"ключ":"значение","b":{"日本":["—"],"z":"é"},"c":3}',
      String.raw`{"a":"\u00e9 and é"}`,
      String.raw`{"a":"\ud83d\ude80 🚀 \ud800"}`,
      String.raw`{"a":"\\u00e9 é"}`,
      '["\uFEFF in front of text", "\uFFFF", "\uFFFE"]',
      '{"max":"\u{10FFFF}", "bmp":"\uFFFF\uFFFE\uFDD0"}',
    ]
    for (const text of cases) same(parseJson(Buffer.from(text)), reference(Buffer.from(text)))
    // a byte-order mark in front is not JSON: refused as the plain decoding refuses it
    expect(() => parseJson(Buffer.from('\uFEFF{"a":"é"}'))).toThrow(/not valid JSON/)
  })

  it('parses a bare string, number or literal, ASCII or not', () => {
    for (const text of ['"—é"', '"plain"', '42', 'null', '[]', ' \n{"a" : "é"}\t ']) same(parseJson(Buffer.from(text)), reference(Buffer.from(text)))
  })

  it('refuses malformed JSON with the message the real text gives, past ASCII too', () => {
    for (const text of ['{"a":"é",}', '{"ü" 1}', 'é', '{"a":"\u00e9"', '[1,2']) {
      const raw = Buffer.from(text)
      let expected = ''
      try {
        reference(raw)
      } catch (err) {
        expected = (err as Error).message
      }
      expect(expected).not.toBe('')
      let thrown: unknown
      try {
        parseJson(raw)
      } catch (err) {
        thrown = err
      }
      expect(thrown).toBeInstanceOf(AppError)
      expect((thrown as AppError).code).toBe('MALFORMED_JSON')
      expect((thrown as AppError).message).toBe(`request body is not valid JSON: ${expected}`)
    }
  })

  it('refuses bytes that are not UTF-8', () => {
    expect(() => parseJson(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d]))).toThrow(/not valid UTF-8/)
  })
})

describe('escapeFree', () => {
  // NUL, lone surrogates of both halves, a pair, and ordinary text: JSON.stringify escapes the
  // first three kinds, and writes the pair and the rest as they are
  const TRICKY = ['\u0000', '\ud800', '\udfff', '\ud83d\ude80', 'a', '\\', 'u', 'é', ' ']

  it('is true only of bodies whose every string PostgreSQL can store, for random bodies', () => {
    const rnd = prng(11)
    let free = 0
    let unfree = 0
    for (let i = 0; i < 3000; i++) {
      const s = () => Array.from({ length: Math.floor(rnd() * 5) }, () => TRICKY[Math.floor(rnd() * TRICKY.length)]).join('')
      const value = rnd() < 0.5 ? { [s()]: s(), records: [{ prompt: s(), metadata: { [s()]: [s()] } }] } : [s(), randomValue(rnd)]
      const raw = Buffer.from(JSON.stringify(value))
      if (escapeFree(raw)) {
        free++
        expect(unstorable(parseJson(raw))).toBeUndefined()
      } else unfree++
    }
    // both kinds came up often
    expect(free).toBeGreaterThan(300)
    expect(unfree).toBeGreaterThan(300)
  })

  it('is false for any \\u, an escaped backslash before a "u" included', () => {
    expect(escapeFree(Buffer.from(String.raw`{"a":"\\u0000"}`))).toBe(false)
    expect(escapeFree(Buffer.from(String.raw`{"a":"\u00e9"}`))).toBe(false)
    expect(escapeFree(Buffer.from(String.raw`{"a":"u0000 é 🚀 \" \\ \n \\n"}`))).toBe(true)
  })
})
