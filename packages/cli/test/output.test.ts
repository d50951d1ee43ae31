import { describe, expect, it } from 'vitest'
import { usd } from '../src/lib/output.js'

describe('usd', () => {
  it('never shows a priced amount as free', () => {
    // a short gpt-4o-mini call costs a few millionths of a dollar
    expect(usd(0.0000026)).toBe('<$0.0001')
    expect(usd(0.00004999)).toBe('<$0.0001')
    expect(usd(0.0001)).toBe('$0.0001')
    expect(usd(0.01234)).toBe('$0.0123')
    expect(usd(0)).toBe('$0.00')
    expect(usd(1)).toBe('$1.00')
    expect(usd(1234.567)).toBe('$1234.57')
  })

  it('shows an unpriced amount as a dash', () => {
    expect(usd(null)).toBe('-')
    expect(usd(undefined)).toBe('-')
  })
})
