import { ApiError } from '@llmguard/shared'
import { CliError } from './errors.js'

/**
 * What a sign-up tried after a refused login (INVALID_CREDENTIALS) failing means: an account of
 * that email exists, so the login failed on the password; or the password is too short to sign
 * up with, which may as well be a mistyped one. Any other error is returned as it is.
 */
export function signupAfterLoginError(err: unknown, email: string): unknown {
  if (err instanceof ApiError && err.code === 'CONFLICT') return new CliError('INVALID_CREDENTIALS', `wrong password for ${email}`)
  const issues = err instanceof ApiError && err.code === 'VALIDATION_ERROR' ? ((err.details?.issues as { path: string; message: string }[] | undefined) ?? []) : []
  const password = issues.find((i) => i.path === 'body.password')
  if (password) return new CliError('INVALID_CREDENTIALS', `login failed for ${email}: wrong password, or no such account (and to sign up, the password ${password.message})`)
  return err
}
