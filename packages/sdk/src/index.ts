export { LLMGuard, type LLMGuardStats, type ManualRecord } from './guard.js'
export type { LLMGuardOptions } from './options.js'
export { LLMGuardError, LLMGuardBlockedError, LLMGuardRateLimitedError, type LLMGuardErrorCode } from './errors.js'
export { CONTEXT_KEY, type CallContext } from './wrap/openai.js'
export type { ParkedRow } from './outbox/store.js'
export { SqliteStore } from './outbox/sqlite.js'

import { CONTEXT_KEY, type CallContext } from './wrap/openai.js'

/**
 * Per-call user and metadata, passed as the request options of a wrapped call:
 * `openai.chat.completions.create(body, withContext({ userId: 'u1' }))`. Merge with other
 * options by passing them as the second argument.
 */
export function withContext<T extends object>(context: CallContext, options?: T): T {
  return { ...options, [CONTEXT_KEY]: context } as T
}
