import { cutText } from '../common.js'
import type { RiskReason } from '../ingest.js'
import { detectShapes, SENSITIVE_KIND_LABELS, type SensitiveKind } from './detectors.js'
import { findInjection } from './injection.js'
import { keywordMatcher } from './keywords.js'
import { modelRiskAdjustment } from './models.js'

export interface RiskInput {
  prompt: string
  response?: string
  model: string
  tokens?: number
  status?: 'success' | 'error'
  error?: { type: string; message: string; status?: number }
}

export interface RiskOptions {
  /** The project's own sensitive keywords (settings), added to the defaults. */
  sensitiveKeywords?: readonly string[]
  /**
   * How many characters of each text the content detectors read (default 65,536): the first
   * three quarters and the last quarter of a longer text. The length rules always use the
   * full length.
   */
  maxScanChars?: number
}

export interface RiskResult {
  /** The raw total clamped to 0–100. */
  riskScore: number
  /** One entry per rule that fired; their points add up to the raw (unclamped) total. */
  riskReasons: RiskReason[]
}

/** The seed's thresholds and points, plus the prompt-injection detector. */
export const RISK_RULES = Object.freeze({
  promptChars: 5000,
  promptPoints: 10,
  responseChars: 10000,
  responsePoints: 10,
  sensitivePoints: 20,
  tokens: 4000,
  tokensPoints: 15,
  errorPoints: 25,
  injectionPoints: 20,
})

/** Stable `code`s of risk reasons (the UI and rules branch on them). */
export const RISK_REASON_CODES = Object.freeze({
  promptLength: 'prompt_length',
  responseLength: 'response_length',
  sensitiveContent: 'sensitive_content',
  tokenCount: 'token_count',
  error: 'error',
  modelAdjustment: 'model_adjustment',
  promptInjection: 'prompt_injection',
})

export const DEFAULT_MAX_SCAN_CHARS = 65_536

/**
 * The part of a text the content detectors read. A match cut at the seam is missed: the
 * price of bounding a 1 MB text to microseconds.
 */
export function scanWindow(text: string, max: number): string {
  if (text.length <= max) return text
  const head = Math.floor((max * 3) / 4)
  return `${text.slice(0, head)}\n${text.slice(text.length - (max - head))}`
}

interface Finding {
  label: string
  where: 'prompt' | 'response'
}

function sensitiveFindings(text: string, where: Finding['where'], options: RiskOptions, lowered: string): Finding[] {
  const kinds = new Set<SensitiveKind>()
  detectShapes(text, kinds)
  const out: Finding[] = []
  for (const kind of kinds) out.push({ label: SENSITIVE_KIND_LABELS[kind], where })
  const kw = keywordMatcher(options.sensitiveKeywords).find(lowered)
  // a project keyword may itself be confidential (a codename, a customer): name it by position only
  if (kw) out.push({ label: kw.project ? `project keyword #${kw.index + 1}` : `keyword "${kw.keyword}"`, where })
  return out
}

const plural = (n: number, word: string) => `${n} ${word}`

/**
 * Risk of one LLM call, 0–100, with the reasons behind it. Pure and synchronous; see
 * docs/risk-scoring.md for every rule and detector.
 */
export function scoreRisk(input: RiskInput, options: RiskOptions = {}): RiskResult {
  const reasons: RiskReason[] = []
  const prompt = input.prompt
  const response = input.response ?? ''
  const max = options.maxScanChars ?? DEFAULT_MAX_SCAN_CHARS

  if (prompt.length > RISK_RULES.promptChars) {
    reasons.push({
      code: RISK_REASON_CODES.promptLength,
      points: RISK_RULES.promptPoints,
      detail: `prompt is ${plural(prompt.length, 'characters')} (> ${RISK_RULES.promptChars})`,
    })
  }
  if (response.length > RISK_RULES.responseChars) {
    reasons.push({
      code: RISK_REASON_CODES.responseLength,
      points: RISK_RULES.responsePoints,
      detail: `response is ${plural(response.length, 'characters')} (> ${RISK_RULES.responseChars})`,
    })
  }

  const promptText = scanWindow(prompt, max)
  const promptLowered = promptText.toLowerCase()
  const findings = sensitiveFindings(promptText, 'prompt', options, promptLowered)
  if (response !== '') {
    const responseText = scanWindow(response, max)
    findings.push(...sensitiveFindings(responseText, 'response', options, responseText.toLowerCase()))
  }
  if (findings.length > 0) {
    const inPrompt = findings.filter((f) => f.where === 'prompt').map((f) => f.label)
    const inResponse = findings.filter((f) => f.where === 'response').map((f) => f.label)
    const parts: string[] = []
    if (inPrompt.length) parts.push(`in prompt: ${inPrompt.join(', ')}`)
    if (inResponse.length) parts.push(`in response: ${inResponse.join(', ')}`)
    reasons.push({ code: RISK_REASON_CODES.sensitiveContent, points: RISK_RULES.sensitivePoints, detail: `sensitive content ${parts.join('; ')}` })
  }

  const tokens = input.tokens ?? 0
  if (tokens > RISK_RULES.tokens) {
    reasons.push({
      code: RISK_REASON_CODES.tokenCount,
      points: RISK_RULES.tokensPoints,
      detail: `${plural(tokens, 'tokens')} (> ${RISK_RULES.tokens})`,
    })
  }

  if (input.status === 'error') {
    // the error's type and HTTP status only: its message may quote the prompt
    const what = input.error ? ` (${input.error.type}${input.error.status !== undefined ? `, HTTP ${input.error.status}` : ''})` : ''
    reasons.push({ code: RISK_REASON_CODES.error, points: RISK_RULES.errorPoints, detail: `the call failed${what}` })
  }

  const adjustment = modelRiskAdjustment(input.model)
  if (adjustment) {
    reasons.push({
      code: RISK_REASON_CODES.modelAdjustment,
      points: adjustment.points,
      detail: `${normalizeForDetail(input.model)}: ${adjustment.why}`,
    })
  }

  const injection = findInjection(promptLowered)
  if (injection) {
    reasons.push({
      code: RISK_REASON_CODES.promptInjection,
      points: RISK_RULES.injectionPoints,
      detail: `prompt-injection phrase in prompt (${injection})`,
    })
  }

  let total = 0
  for (const r of reasons) total += r.points
  return { riskScore: Math.min(100, Math.max(0, total)), riskReasons: reasons }
}

const normalizeForDetail = (model: string) => (model.length > 100 ? `${cutText(model, 100)}…` : model)
