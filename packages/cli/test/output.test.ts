import { describe, expect, it } from 'vitest'
import { emptyPage, table, usd } from '../src/lib/output.js'

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
