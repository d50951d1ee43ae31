import { z } from 'zod'

/** Emails compare case-insensitively; they are stored and returned lower-cased. */
export const emailSchema = z
  .string()
  .trim()
  .max(254)
  .pipe(z.email())
  .transform((v) => v.toLowerCase())
export const passwordSchema = z.string().min(8, 'must be at least 8 characters').max(256, 'must be at most 256 characters')
export const userNameSchema = z.string().trim().min(1).max(100)

export const ROLES = ['user', 'admin'] as const
export const roleSchema = z.enum(ROLES)
export type Role = z.infer<typeof roleSchema>

export const registerBodySchema = z.strictObject({
  email: emailSchema,
  password: passwordSchema,
  name: userNameSchema.optional(),
  /** Browsers: put the refresh token in an HttpOnly cookie instead of the body. */
  useCookies: z.boolean().optional(),
})
export type RegisterBody = z.input<typeof registerBodySchema>

export const loginBodySchema = z.strictObject({
  email: emailSchema,
  // not the registration rules: a wrong password of any length is just a wrong password
  password: z.string().min(1).max(256),
  useCookies: z.boolean().optional(),
})
export type LoginBody = z.input<typeof loginBodySchema>

/** Refresh and logout: the token in the body, or (cookie mode) in the refresh cookie. */
export const refreshBodySchema = z
  .strictObject({ refreshToken: z.string().min(1).max(4096).optional() })
  .optional()
  .transform((v) => v ?? {})
export type RefreshBody = z.input<typeof refreshBodySchema>

export const userSchema = z
  .object({
    id: z.uuid(),
    email: z.string(),
    name: z.string().nullable(),
    role: roleSchema,
    createdAt: z.string(),
  })
  .meta({ id: 'User' })
export type User = z.infer<typeof userSchema>

export const tokensSchema = z
  .object({
    accessToken: z.string(),
    /** Absent in cookie mode: the refresh token then travels only in the HttpOnly cookie. */
    refreshToken: z.string().optional(),
    /** Seconds until the access token expires (900). */
    expiresIn: z.number().int(),
  })
  .meta({ id: 'Tokens' })
export type Tokens = z.infer<typeof tokensSchema>

export const authResultSchema = z.object({ user: userSchema, tokens: tokensSchema }).meta({ id: 'AuthResult' })
export type AuthResult = z.infer<typeof authResultSchema>
export const refreshResultSchema = z.object({ tokens: tokensSchema })
export type RefreshResult = z.infer<typeof refreshResultSchema>

/** The refresh cookie of cookie mode (HttpOnly; Secure; SameSite=Strict; Path=/v1/auth). */
export const REFRESH_COOKIE = 'llmguard_refresh'
export const ACCESS_TOKEN_TTL_SECONDS = 900
export const REFRESH_TOKEN_TTL_SECONDS = 7 * 24 * 3600
/** Requests per minute a signed-in user may make (all routes together), SPEC "Rate limiting". */
export const USER_RATE_LIMIT_PER_MINUTE = 1200
