import { ApiError, toIssues } from '@llmguard/shared'

/**
 * An error the CLI explains itself. `code` is stable (scripts read it from `--json`), the
 * message is one line a person can act on, and the exit code follows sysexits loosely:
 * 1 for an answer the collector refused, 2 for bad usage, 69 when the collector is unreachable.
 */
export class CliError extends Error {
  override readonly name = 'CliError'
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode = 1,
    readonly details?: Record<string, unknown>,
  ) {
    super(message)
  }
}

export const EXIT_USAGE = 2
export const EXIT_UNAVAILABLE = 69

export interface Failure {
  code: string
  message: string
  status?: number
  details?: Record<string, unknown>
  exitCode: number
}

/** What any thrown error becomes on the terminal: one line, a stable code, an exit code. */
export function toFailure(err: unknown): Failure {
  if (err instanceof CliError) return { code: err.code, message: err.message, details: err.details, exitCode: err.exitCode }
  if (err instanceof ApiError) {
    if (err.code === 'UNREACHABLE') return { code: err.code, message: err.message, exitCode: EXIT_UNAVAILABLE }
    // the collector's message names the first issue already: add only the ones it does not
    const issues = ((err.details?.issues as { path: string; message: string }[] | undefined) ?? [])
      .map((i) => `${i.path}: ${i.message}`)
      .filter((text) => !err.message.includes(text))
    // a rollback refused for later actions names them (the ids are in details, shown by --json)
    const later = err.details?.conflictingRemediationIds
    if (Array.isArray(later) && later.length) issues.push(`later: ${later.join(', ')}`)
    const detail = issues.length ? ` (${issues.join('; ')})` : ''
    // a value the collector refused as invalid is bad usage, as one the CLI refuses itself
    const exitCode = err.code === 'VALIDATION_ERROR' ? EXIT_USAGE : 1
    return { code: err.code, message: `${err.message}${detail}`, status: err.status, details: err.details, exitCode }
  }
  const e = err as { message?: string; oclif?: { exit?: number }; code?: string }
  // oclif's own parse errors (unknown flag, bad option, missing argument) are usage errors
  if (e?.oclif?.exit !== undefined || /^(Expected|Unexpected argument|Missing required|Nonexistent flag|Parsing)/.test(e?.message ?? '')) {
    const message = (e.message ?? String(err))
      .split('\n')
      .map((l) => l.replace(/\s+/g, ' ').trim())
      .filter((l) => l && !/^See more help with/.test(l))
      .join(': ')
      .replace(/:+:/g, ':')
    return { code: 'USAGE', message: `${message} (see --help)`, exitCode: EXIT_USAGE }
  }
  return { code: e?.code && typeof e.code === 'string' ? e.code : 'INTERNAL', message: e?.message ?? String(err), exitCode: 1 }
}

export const usage = (message: string) => new CliError('USAGE', message, EXIT_USAGE)

/**
 * Checks a query with the API's own schema before any request: what it refuses is one usage
 * error naming the flags (`flags`: the query field → its flag, where the names differ).
 */
export function checkQuery(
  schema: { safeParse(v: unknown): { success: true } | { success: false; error: Parameters<typeof toIssues>[0] } },
  query: Record<string, unknown>,
  flags: Record<string, string>,
): void {
  const checked = schema.safeParse(query)
  if (!checked.success) throw usage(toIssues(checked.error).map((i) => `--${flags[i.path] ?? i.path}: ${i.message}`).join('; '))
}
