import { ERROR_STATUS, type ErrorCode } from '@llmguard/shared'

/**
 * The one error type of the collector. Anything thrown while handling a request is turned
 * into the error envelope in exactly one place (http/server.ts); an error that is not an
 * AppError becomes a 500 INTERNAL with nothing of its message or stack sent out.
 */
export class AppError extends Error {
  override readonly name = 'AppError'
  readonly status: number
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    /** Extra response headers, e.g. Retry-After on 429. */
    readonly headers?: Record<string, string>,
  ) {
    super(message)
    this.status = ERROR_STATUS[code]
  }
}

export const notFound = (what = 'resource') => new AppError('NOT_FOUND', `${what} not found`)
