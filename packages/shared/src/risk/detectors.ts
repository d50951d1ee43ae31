import { cardNumberValid, IBAN_LENGTHS, ibanValid, ssnValid } from './checks.js'

/**
 * Shape detectors for sensitive data. Each regex is linear: it starts with a literal or a
 * single-character test, has bounded repetition, and never nests an ambiguous quantifier under
 * a failing tail, so a 1 MB run of digits or letters cannot make it backtrack badly. Checksums
 * and ranges are applied in code to each candidate.
 */

export type SensitiveKind =
  | 'email'
  | 'phone'
  | 'card'
  | 'ssn'
  | 'iban'
  | 'openai_key'
  | 'stripe_key'
  | 'aws_access_key'
  | 'github_token'
  | 'private_key'

/** What a reason's detail says for each kind (never the value found). */
export const SENSITIVE_KIND_LABELS: Readonly<Record<SensitiveKind, string>> = {
  email: 'email address',
  phone: 'phone number',
  card: 'payment card number',
  ssn: 'US social security number',
  iban: 'IBAN',
  openai_key: 'OpenAI API key',
  stripe_key: 'Stripe secret key',
  aws_access_key: 'AWS access key id',
  github_token: 'GitHub token',
  private_key: 'PEM private key',
}

const isAlnum = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
const isWordChar = (c: number) => isAlnum(c) || c === 95 /* _ */

// ---------- secrets: one pass, literal prefixes ----------
// The boundary before a key (not preceded by a word character) is checked in code so every
// alternative starts with a literal the regex engine can scan for quickly.
const SECRET_RE =
  /sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}|[sr]k_(?:live|test)_[A-Za-z0-9]{10,}|A(?:KIA|SIA)[A-Z0-9]{16}|gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,}|-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY-----/g
const HAS_DIGIT = /\d/

function secretKind(text: string, match: string, at: number): SensitiveKind | undefined {
  if (at > 0 && (isWordChar(text.charCodeAt(at - 1)) || text.charCodeAt(at - 1) === 45)) return undefined
  switch (match.charCodeAt(0)) {
    case 45: // -----BEGIN … PRIVATE KEY-----
      return 'private_key'
    case 65: // AKIA / ASIA: exactly 20 characters
      return isAlnum(text.charCodeAt(at + match.length)) ? undefined : 'aws_access_key'
    case 103: // gh*_ / github_pat_
      return 'github_token'
    default:
      // real keys are random: a hyphenated phrase like "sk-this-is-not-a-key-at-all" has no digit
      if (!HAS_DIGIT.test(match)) return undefined
      return match.charCodeAt(2) === 45 ? 'openai_key' : 'stripe_key'
  }
}

export function findSecrets(text: string, found: Set<SensitiveKind>): void {
  SECRET_RE.lastIndex = 0
  for (let m = SECRET_RE.exec(text); m !== null; m = SECRET_RE.exec(text)) {
    const kind = secretKind(text, m[0], m.index)
    if (kind) found.add(kind)
  }
}

// ---------- emails: anchored on '@' ----------
// A regex like /[\w.]+@/ retries its left part from every position of a long word run
// (quadratic); walking out from each '@' is linear.
const isLocalChar = (c: number) => isAlnum(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45 // . _ % + -
const isDomainChar = (c: number) => isAlnum(c) || c === 45 || c === 46
const RETINA_ASSET = /^\d+x\./ // icon@2x.png is a file name, not an address

export function emailAt(text: string, at: number): boolean {
  let start = at
  while (start > 0 && at - start < 64 && isLocalChar(text.charCodeAt(start - 1))) start--
  if (start === at) return false
  const local = text.slice(start, at)
  if (local.charCodeAt(0) === 46 || local.charCodeAt(local.length - 1) === 46 || local.includes('..')) return false
  let end = at + 1
  let dots = 0
  for (let c = text.charCodeAt(end); end < text.length && end - at <= 253 && isDomainChar(c); c = text.charCodeAt(++end)) {
    if (c === 46) dots++
  }
  if (dots === 0) return false
  let domain = text.slice(at + 1, end)
  while (domain.endsWith('.')) domain = domain.slice(0, -1) // the full stop ending a sentence
  const labels = domain.split('.')
  if (labels.length < 2 || RETINA_ASSET.test(domain)) return false
  for (const label of labels) {
    if (label === '' || label.length > 63 || label.startsWith('-') || label.endsWith('-')) return false
  }
  return /^[a-z]{2,24}$/i.test(labels[labels.length - 1]!)
}

export function findEmail(text: string): boolean {
  for (let at = text.indexOf('@'); at !== -1; at = text.indexOf('@', at + 1)) {
    if (emailAt(text, at)) return true
  }
  return false
}

// ---------- numbers: cards, SSNs, phones ----------
// 13–19 digits in groups of 3+ separated by single spaces or dashes (the last group may be
// shorter), not part of a longer number, a decimal or a word.
const CARD_RE = /(?<![\w.,])\d{3}(?:[ -]?\d){10,16}(?![ -]?\d|\w)/g
const CARD_GROUPS = /[ -]/
export function findCard(text: string): boolean {
  CARD_RE.lastIndex = 0
  for (let m = CARD_RE.exec(text); m !== null; m = CARD_RE.exec(text)) {
    const groups = m[0].split(CARD_GROUPS)
    let ok = true
    for (let i = 0; i < groups.length - 1; i++) if (groups[i]!.length < 3) ok = false
    if (ok && cardNumberValid(groups.join(''))) return true
  }
  return false
}

// AAA-GG-SSSS (or with spaces, the same separator twice).
const SSN_RE = /(?<![\w-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\w]|-\d)/g
export function findSsn(text: string): boolean {
  SSN_RE.lastIndex = 0
  for (let m = SSN_RE.exec(text); m !== null; m = SSN_RE.exec(text)) {
    if (ssnValid(m[1]!, m[3]!, m[4]!)) return true
  }
  return false
}

// North American numbers need separators or a parenthesised area code ((415) 555-2671,
// 415-555-2671, 415.555.2671, +1 415 555 2671): a bare 10-digit run is more often an order
// number or a timestamp than a phone. International numbers need a leading + and 8–15 digits.
const NANP_RE = /(?<![\w+(.-])(?:\+?1[ .-]?)?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}(?![\w]|[.-]\d)/
const INTL_RE = /(?<![\w+])\+[2-9][\d ().-]{6,22}\d(?!\d)/g
const NON_DIGITS = /\D/g
const DOUBLE_SEPARATOR = /[ .-]{2}/
export function findPhone(text: string): boolean {
  if (NANP_RE.test(text)) return true
  INTL_RE.lastIndex = 0
  for (let m = INTL_RE.exec(text); m !== null; m = INTL_RE.exec(text)) {
    const digits = m[0].replace(NON_DIGITS, '').length
    if (digits >= 8 && digits <= 15 && !DOUBLE_SEPARATOR.test(m[0])) return true
  }
  return false
}

// ---------- IBAN ----------
// Country code, check digits, then up to 30 letters/digits, optionally in groups of four.
// The regex takes as much as it can; the country's length decides where the IBAN ends.
const IBAN_RE = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}/g
export function findIban(text: string): boolean {
  IBAN_RE.lastIndex = 0
  for (let m = IBAN_RE.exec(text); m !== null; m = IBAN_RE.exec(text)) {
    const length = IBAN_LENGTHS[m[0].slice(0, 2)]
    if (length === undefined) continue
    let compact = ''
    let i = 0
    for (; i < m[0].length && compact.length < length; i++) {
      if (m[0][i] !== ' ') compact += m[0][i]
    }
    if (compact.length !== length) continue
    // the IBAN must end at a boundary: not glued to further letters or digits
    const next = i < m[0].length ? m[0].charCodeAt(i) : text.charCodeAt(m.index + i)
    if (isAlnum(next)) continue
    if (ibanValid(compact)) return true
  }
  return false
}

/** Every shape detector over one text; adds the kinds found to `found`. */
export function detectShapes(text: string, found: Set<SensitiveKind>): void {
  findSecrets(text, found)
  if (findEmail(text)) found.add('email')
  if (findCard(text)) found.add('card')
  if (findSsn(text)) found.add('ssn')
  if (findPhone(text)) found.add('phone')
  if (findIban(text)) found.add('iban')
}
