import { describe, expect, it } from 'vitest'
import { emptyPage, table, terminalSafe, usd } from '../src/lib/output.js'

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

describe('emptyPage', () => {
  const page = (p: number, limit: number, total: number, totalCapped = false) => ({ page: p, limit, total, totalCapped })

  it('says where the results are when the page is past them: one page, or a range of pages', () => {
    expect(emptyPage(page(99, 50, 3), 'none')).toBe('nothing on page 99: 3 in all, on page 1')
    expect(emptyPage(page(9, 2, 3), 'none')).toBe('nothing on page 9: 3 in all, on pages 1–2')
    expect(emptyPage(page(1001, 10, 10_000, true), 'none')).toBe('nothing on page 1001: 10000+ in all, on pages 1–1000+')
  })

  it('says there are none when there are none, or when the page is not past them', () => {
    expect(emptyPage(page(1, 50, 0), 'no projects')).toBe('no projects')
    expect(emptyPage(page(3, 50, 0), 'no projects')).toBe('no projects')
    expect(emptyPage(page(1, 50, 3), 'no projects')).toBe('no projects')
  })
})

describe('table', () => {
  it('shows a missing value as - unless the column says otherwise', () => {
    const rows = [{ mark: '*', name: 'a' }, { mark: '', name: null }]
    expect(table(rows, [{ header: '', get: (r) => r.mark, empty: '' }, { header: 'NAME', get: (r) => r.name }])).toBe(['   NAME', '*  a', '   -'].join('\n'))
  })
})

describe('terminalSafe', () => {
  it("lets the CLI's own colours through and shows every other control as \\xNN", () => {
    expect(terminalSafe('\u001b[31merror\u001b[39m\tok\n')).toBe('\u001b[31merror\u001b[39m\tok\n')
    expect(terminalSafe('a\u001b]52;c;eA==\u0007b\u001b[2J\u009b\r')).toBe('a\\x1b]52;c;eA==\\x07b\\x1b[2J\\x9b\\x0d')
  })
})
