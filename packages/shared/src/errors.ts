import { z } from 'zod'

/**
 * Stable error codes. The collector answers with these in the error envelope; the SDK and
 * CLI branch on them, so a code is never renamed once released.
 */
export const ERROR_STATUS = {
  VALIDATION_ERROR: 400,
  MALFORMED_JSON: 400,
  UNAUTHORIZED: 401,
  TOKEN_EXPIRED: 401,
  INVALID_CREDENTIALS: 401,
  TOKEN_REUSED: 401,
  WEBHOOK_SIGNATURE_INVALID: 401,
  FORBIDDEN: 403,
  INVALID_API_KEY: 403,
  SIGNUP_CLOSED: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  INVALID_TRANSITION: 409,
  ROLLBACK_CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  PLAN_LIMIT_EXCEEDED: 429,
  INTERNAL: 500,
  NOT_READY: 503,
  BILLING_NOT_CONFIGURED: 503,
  WEBHOOK_NOT_CONFIGURED: 503,
} as const

export type ErrorCode = keyof typeof ERROR_STATUS
export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[]

export const errorIssueSchema = z.object({
  path: z.string(),
  message: z.string(),
})
export type ErrorIssue = z.infer<typeof errorIssueSchema>

export const errorEnvelopeSchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
      timestamp: z.string(),
      requestId: z.string(),
    }),
  })
  .meta({ id: 'ErrorEnvelope' })
export type ErrorEnvelope = z.infer<typeof errorEnvelopeSchema>

/** Turns zod issues into the envelope's `details.issues` shape (`path` dotted, e.g. `records.3.model`). */
export function toIssues(error: z.ZodError): ErrorIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
  }))
}
