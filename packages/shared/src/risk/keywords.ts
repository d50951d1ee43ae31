/**
 * Sensitive keywords. Matching is case-insensitive and whole-word-ish: a keyword must not be
 * glued to letters, digits or combining marks of any alphabet on either side (`password` matches
 * "Password:", "db_password" and "passwords", not "passwordless", "épassword" or "passwordé");
 * the words of a multi-word keyword may be joined by spaces, `_`, `-` (up to three) or nothing
 * ("api key", "API_KEY", "apikey"). Letters of scripts written without spaces between words
 * (see `UNSPACED`) never glue: a keyword matches inside running Chinese, Japanese, Korean or Thai.
 */
export const DEFAULT_SENSITIVE_KEYWORDS: readonly string[] = Object.freeze([
  'password',
  'passwd',
  'passphrase',
  'secret',
  'api key',
  'access key',
  'secret key',
  'private key',
  'access token',
  'auth token',
  'refresh token',
  'bearer token',
  'client secret',
  'ssn',
  'social security number',
  'credit card',
  'card number',
  'cvv',
  'cvc',
  'iban',
  'routing number',
  'bank account',
  'account number',
  'passport number',
  'date of birth',
  'driver license',
  'drivers license',
])

/** Projects can add many keywords; beyond this many the rest are ignored (documented). */
export const MAX_PROJECT_KEYWORDS = 500

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * Scripts written without spaces between words (Chinese, Japanese, Thai, Lao, Khmer, Myanmar) and
 * Hangul, whose particles are glued onto the noun ("비밀번호는"): no word boundary can be read
 * from the text, so their letters never glue to a keyword, and a keyword edge in one of them is
 * not checked. Script_Extensions, so the shared marks (the prolonged sound mark ー, 々) count too.
 */
const UNSPACED = '\\p{scx=Han}\\p{scx=Hiragana}\\p{scx=Katakana}\\p{scx=Bopomofo}\\p{scx=Hangul}\\p{scx=Thai}\\p{scx=Lao}\\p{scx=Khmer}\\p{scx=Myanmar}'
/** A character that makes a keyword part of a longer word (needs the `v` flag). */
const GLUE = `[[\\p{L}\\p{N}\\p{M}]--[${UNSPACED}]]`
const STARTS_UNSPACED = new RegExp(`^[${UNSPACED}]`, 'v')

/** One keyword → a regex source over lower-cased text, and whether its start needs a boundary. */
function keywordSource(keyword: string): { src: string; free: boolean } | undefined {
  const words = keyword.toLowerCase().split(/[\s_-]+/).filter((w) => w !== '')
  if (words.length === 0) return undefined
  // `-` must be escaped in a `v`-mode class
  return { src: words.map(escapeRegExp).join('[\\s_\\-]{0,3}'), free: STARTS_UNSPACED.test(words[0]!) }
}

export interface KeywordMatcher {
  /** The keyword found first in `lowered` (already lower-cased), or undefined. */
  find(lowered: string): { keyword: string; index: number; project: boolean } | undefined
}

/**
 * One alternation regex for all keywords, so a text is scanned once. Each keyword is its own
 * capture group, which tells which one matched. Optional plural `s`/`es`.
 */
function buildMatcher(defaults: readonly string[], project: readonly string[]): KeywordMatcher {
  const entries: { keyword: string; index: number; project: boolean }[] = []
  const sources: string[] = []
  const free: boolean[] = []
  const seen = new Set<string>()
  const add = (keyword: string, index: number, isProject: boolean) => {
    const source = keywordSource(keyword)
    if (source === undefined || seen.has(source.src)) return
    seen.add(source.src)
    entries.push({ keyword, index, project: isProject })
    sources.push(`(${source.src})`)
    free.push(source.free)
  }
  defaults.forEach((k, i) => add(k, i, false))
  project.slice(0, MAX_PROJECT_KEYWORDS).forEach((k, i) => add(k, i, true))
  if (sources.length === 0) return { find: () => undefined }
  // longer alternatives first so "secret key" is reported rather than "secret"
  const byLength = sources.map((_, i) => i).sort((a, b) => sources[b]!.length - sources[a]!.length)
  const checked = byLength.filter((i) => !free[i])
  const unchecked = byLength.filter((i) => free[i])
  // Keywords starting in an unspaced script get their own branch without the lookbehind: a
  // lookbehind per keyword, or an alternation of lookarounds up front, cost V8 its fast
  // first-character scan (~5x slower on prose); that branch goes first, which measured as fast
  // as one branch. Keywords of the two branches cannot start at the same character, so the
  // leftmost match and the longest-first report are as with one alternation. The end also
  // passes right after a letter of an unspaced script: a keyword ending in one.
  const end = `(?:e?s)?(?:(?!${GLUE})|(?<=[${UNSPACED}]))`
  const alternation = (list: number[]) => `(?:${list.map((i) => sources[i]).join('|')})${end}`
  const branches: string[] = []
  if (unchecked.length > 0) branches.push(alternation(unchecked))
  if (checked.length > 0) branches.push(`(?<!${GLUE})${alternation(checked)}`)
  const order = [...unchecked, ...checked] // capture groups in source order
  const re = new RegExp(branches.join('|'), 'gv')
  return {
    find(lowered) {
      re.lastIndex = 0
      const m = re.exec(lowered)
      if (!m) return undefined
      for (let g = 1; g < m.length; g++) if (m[g] !== undefined) return entries[order[g - 1]!]
      return undefined
    },
  }
}

// Project keyword lists change rarely and repeat on every record of a project: cache matchers.
const cache = new Map<string, KeywordMatcher>()
const CACHE_LIMIT = 256

// and the same list object (a project's settings, cached by the caller) skips even the key
const byList = new WeakMap<readonly string[], KeywordMatcher>()
const NO_KEYWORDS: readonly string[] = Object.freeze([])

export function keywordMatcher(projectKeywords: readonly string[] = NO_KEYWORDS): KeywordMatcher {
  const known = byList.get(projectKeywords)
  if (known) return known
  const key = projectKeywords.join('\u0000')
  let matcher = cache.get(key)
  if (!matcher) {
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!)
    matcher = buildMatcher(DEFAULT_SENSITIVE_KEYWORDS, projectKeywords)
    cache.set(key, matcher)
  }
  // a list changed in place must not keep its old matcher: only frozen lists are remembered
  if (Object.isFrozen(projectKeywords)) byList.set(projectKeywords, matcher)
  return matcher
}
