/**
 * Prompt-injection phrases: the common "override the instructions" and jailbreak openers.
 * Matched on the lower-cased prompt with any run of whitespace between words. Each entry is
 * a documented family; `label` is what a reason's detail names.
 */
const W = '\\s+'
const ANY = (...alts: string[]) => `(?:${alts.join('|')})`
// "all", "the", "your", "any", "of", "my" between the verb and the object, at most three
const FILLER = `(?:${ANY('all', 'the', 'your', 'any', 'of', 'my', 'these', 'those')}${W}){0,3}`
const PRIOR = ANY('previous', 'prior', 'above', 'preceding', 'earlier', 'former', 'original', 'initial', 'system')
// not "message" or "context": "ignore my previous message, I meant Paris" is a user correcting themselves
const RULES = ANY('instructions?', 'prompts?', 'rules', 'directions', 'directives', 'guidelines')

export const INJECTION_PATTERNS: readonly { label: string; source: string }[] = [
  // ignore / disregard / forget / override (all) (the) previous instructions; disregard the system prompt
  {
    label: 'instruction override',
    source: `${ANY('ignore', 'disregard', 'forget', 'override', 'bypass', 'skip')}${W}${FILLER}${PRIOR}${W}${FILLER}${RULES}`,
  },
  // ignore all instructions / forget your rules (no "previous", but "all" or "your")
  {
    label: 'instruction override',
    source: `${ANY('ignore', 'disregard', 'forget')}${W}(?:all${W}(?:of${W})?(?:your${W})?|your${W})${ANY('instructions', 'rules', 'guidelines', 'programming', 'training')}`,
  },
  {
    label: 'system prompt extraction',
    source: `${ANY('reveal', 'print', 'show', 'repeat', 'output', 'leak', 'tell me')}${W}${FILLER}${ANY('system', 'hidden', 'initial', 'original')}${W}${ANY('prompt', 'instructions')}`,
  },
  { label: 'DAN jailbreak', source: `you${W}are${W}now${W}(?:dan|in${W}developer${W}mode)\\b|\\bdo${W}anything${W}now\\b` },
  { label: 'developer mode jailbreak', source: `${ANY('enable', 'activate', 'enter')}${W}developer${W}mode` },
  { label: 'new instructions', source: `${ANY('new', 'updated')}${W}instructions\\s*:|from${W}now${W}on${W}you${W}${ANY('are', 'will')}${W}(?:no${W}longer|not)${W}(?:be${W})?bound` },
  { label: 'persona without limits', source: `(?:act|pretend|behave)${W}as${W}(?:if${W}you${W}(?:are|were)${W})?(?:an?${W})?(?:unfiltered|uncensored|unrestricted|jailbroken)` },
]

// a leading \b lets the engine skip mid-word positions cheaply (~30 % faster on plain prose)
const INJECTION_RE = new RegExp(`\\b(?:${INJECTION_PATTERNS.map((p) => `(${p.source})`).join('|')})`)

/** The first injection family found in `lowered` (a lower-cased prompt), or undefined. */
export function findInjection(lowered: string): string | undefined {
  const m = INJECTION_RE.exec(lowered)
  if (!m) return undefined
  for (let g = 0; g < INJECTION_PATTERNS.length; g++) if (m[g + 1] !== undefined) return INJECTION_PATTERNS[g]!.label
  return undefined
}
