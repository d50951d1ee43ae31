/**
 * Errors the SDK throws into the caller's code. Only deliberate policy decisions reach the
 * caller; every other LLMGuard failure is swallowed and counted (see `stats().lastError`).
 */
export type LLMGuardErrorCode = 'ENDPOINT_DISABLED' | 'RISK_BLOCKED' | 'USER_RATE_LIMITED'

export class LLMGuardError extends Error {
  override name = 'LLMGuardError'
  constructor(
    readonly code: LLMGuardErrorCode,
    message: string,
  ) {
    super(message)
  }
}

/** The project's policy forbids this call (a disabled endpoint, or a prompt at or over the risk threshold). */
export class LLMGuardBlockedError extends LLMGuardError {
  override name = 'LLMGuardBlockedError'
  constructor(
    code: 'ENDPOINT_DISABLED' | 'RISK_BLOCKED',
    message: string,
    readonly endpoint: string,
    readonly riskScore?: number,
  ) {
    super(code, message)
  }
}

/** The app's end user went over the calls per minute the policy allows them. */
export class LLMGuardRateLimitedError extends LLMGuardError {
  override name = 'LLMGuardRateLimitedError'
  constructor(
    readonly userId: string,
    readonly limitPerMinute: number,
    readonly retryAfterMs: number,
  ) {
    super('USER_RATE_LIMITED', `user ${JSON.stringify(userId)} is limited to ${limitPerMinute} calls per minute`)
  }
}
