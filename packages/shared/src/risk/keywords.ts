/**
 * Sensitive keywords. Matching is case-insensitive and whole-word-ish: a keyword must not be
 * glued to letters or digits on either side (`password` matches "Password:", "db_password" and
 * "passwords", not "passwordless"); the words of a multi-word keyword may be joined by spaces,
 * `_`, `-` (up to three) or nothing ("api key", "API_KEY", "apikey").
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

/** One keyword → a regex source over lower-cased text. */
function keywordSource(keyword: string): string | undefined {
  const words = keyword.toLowerCase().split(/[\s_-]+/).filter((w) => w !== '')
  if (words.length === 0) return undefined
  return words.map(escapeRegExp).join('[\\s_-]{0,3}')
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
  const seen = new Set<string>()
  const add = (keyword: string, index: number, isProject: boolean) => {
    const src = keywordSource(keyword)
    if (src === undefined || seen.has(src)) return
    seen.add(src)
    entries.push({ keyword, index, project: isProject })
    sources.push(`(${src})`)
  }
  defaults.forEach((k, i) => add(k, i, false))
  project.slice(0, MAX_PROJECT_KEYWORDS).forEach((k, i) => add(k, i, true))
  if (sources.length === 0) return { find: () => undefined }
  // longer alternatives first so "secret key" is reported rather than "secret"
  const order = sources.map((_, i) => i).sort((a, b) => sources[b]!.length - sources[a]!.length)
  const re = new RegExp(`(?<![a-z0-9])(?:${order.map((i) => sources[i]).join('|')})(?:e?s)?(?![a-z0-9])`, 'g')
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
