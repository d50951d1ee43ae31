import { modelOverrideOf, type Policy } from '@llmguard/shared'
import { LLMGuardBlockedError, LLMGuardRateLimitedError } from '../errors.js'
import { promptOf } from '../record/build.js'
import type { UserRateLimiter } from './rate-limit.js'

type Obj = Record<string, unknown>

export interface PolicyDeps {
  limiter: UserRateLimiter
  now: number
  /** The shared risk scorer over a prompt; absent → `blockOnRisk` cannot be applied. */
  scoreRisk?: (prompt: string, model: string) => number
}

export interface Applied {
  body: Obj
  /** Set when a model override switched the model. */
  requestedModel?: string
}

/** True when the policy changes nothing for any call: the hot path can skip it. */
export function isNoop(p: Policy): boolean {
  return (
    p.disabledEndpoints.length === 0 &&
    !p.blockOnRisk &&
    p.systemPrompt === null &&
    isEmpty(p.modelOverrides) &&
    isEmpty(p.userRateLimits)
  )
}

function isEmpty(o: Record<string, unknown>): boolean {
  for (const _ in o) return false
  return true
}

/**
 * Applies the project's policy to one call, before it is sent. Throws the typed errors for a
 * deliberate block; returns a new body (the caller's object is never mutated).
 */
export function applyPolicy(policy: Policy, endpoint: string, body: Obj, userId: string | undefined, deps: PolicyDeps): Applied {
  if (policy.disabledEndpoints.includes(endpoint)) {
    throw new LLMGuardBlockedError('ENDPOINT_DISABLED', `the project's policy disables ${endpoint}`, endpoint)
  }
  const model = typeof body.model === 'string' ? body.model : ''
  if (policy.blockOnRisk && deps.scoreRisk) {
    // the app's own prompt is judged, before any policy system prompt is added
    const score = deps.scoreRisk(promptOf(endpoint, body), model)
    if (score >= policy.safetyThreshold) {
      throw new LLMGuardBlockedError(
        'RISK_BLOCKED',
        `prompt risk score ${score} reaches the project's safety threshold ${policy.safetyThreshold}`,
        endpoint,
        score,
      )
    }
  }
  if (userId !== undefined) {
    // own entries only: an end user called "constructor" has no limit unless the policy names one
    const limit = Object.hasOwn(policy.userRateLimits, userId) ? policy.userRateLimits[userId] : undefined
    if (limit !== undefined) {
      const taken = deps.limiter.take(userId, limit, deps.now)
      if (!taken.ok) throw new LLMGuardRateLimitedError(userId, limit, taken.retryAfterMs)
    }
  }
  let out = body
  const applied: Applied = { body }
  const target = modelOverrideOf(policy.modelOverrides, model)
  if (target !== undefined && target !== model && endpoint !== 'embeddings') {
    out = { ...out, model: target }
    applied.requestedModel = model
  }
  if (policy.systemPrompt !== null) out = withSystemPrompt(endpoint, out, policy.systemPrompt)
  applied.body = out
  return applied
}

/**
 * The policy's system prompt replaces the app's. Chat: one system message first, the app's
 * system and developer messages gone. Responses: `instructions`, the app's system and developer
 * messages in `input` gone (and `input` with them when nothing else was in it). Other endpoints
 * have no system prompt.
 */
export function withSystemPrompt(endpoint: string, body: Obj, systemPrompt: string): Obj {
  if (endpoint === 'responses') {
    if (!Array.isArray(body.input)) return { ...body, instructions: systemPrompt }
    const input = (body.input as unknown[]).filter((item) => {
      if (typeof item !== 'object' || item === null) return true
      const { role, type } = item as Obj
      return !((role === 'system' || role === 'developer') && (type === undefined || type === 'message'))
    })
    if (input.length > 0 || body.input.length === 0) return { ...body, instructions: systemPrompt, input }
    // the app's input was only system/developer messages: the request is the instructions alone
    // (an emptied `input: []` is not what the app sent, and the API may refuse it)
    const { input: _dropped, ...rest } = body
    return { ...rest, instructions: systemPrompt }
  }
  if (endpoint !== 'chat.completions' || !Array.isArray(body.messages)) return body
  const messages: unknown[] = [{ role: 'system', content: systemPrompt }]
  for (const m of body.messages as unknown[]) {
    const role = typeof m === 'object' && m !== null ? (m as Obj).role : undefined
    if (role === 'system' || role === 'developer') continue
    messages.push(m)
  }
  return { ...body, messages }
}
