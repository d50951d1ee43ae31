import type { Logger } from './logger.js'

/**
 * How long a collector that hit an uncaught exception gets to stop (in-flight requests, then the
 * database) before it exits anyway: a whole graceful stop's bound (self-hosting.md).
 */
export const CRASH_STOP_MS = 15_000

/**
 * What a running collector does with failures nobody caught. Without this, Node prints them
 * unstructured to stderr (past the log's redaction) and ends the process, leaving an embedded
 * database unclosed.
 * - A rejected promise nobody handled is a bug in one piece of work (a job, a request): it is
 *   logged as an error and the collector keeps serving, so ingest is not lost to it.
 * - An uncaught exception leaves the process in an unknown state: it is logged as fatal, the
 *   collector stops (the database closes cleanly, the data dir lock is released) within
 *   CRASH_STOP_MS, and the process exits with 1 so a supervisor restarts it.
 */
export function installCrashHandlers(logger: Logger, stop: () => Promise<void>, exit: (code: number) => void = (c) => process.exit(c)): () => void {
  let crashed = false
  const onRejection = (reason: unknown) => {
    logger.error({ err: reason }, 'unhandled promise rejection (a bug: please report it); the collector keeps running')
  }
  const onException = (err: Error) => {
    logger.fatal({ err }, 'uncaught exception (a bug: please report it); stopping')
    if (crashed) return
    crashed = true
    const timer = setTimeout(() => exit(1), CRASH_STOP_MS)
    timer.unref()
    stop().then(
      () => exit(1),
      (e: unknown) => {
        logger.error({ err: e }, 'error while stopping after an uncaught exception')
        exit(1)
      },
    )
  }
  process.on('unhandledRejection', onRejection)
  process.on('uncaughtException', onException)
  // for a collector that runs inside another program (the CLI's `collector start`), once stopped
  return () => {
    process.off('unhandledRejection', onRejection)
    process.off('uncaughtException', onException)
  }
}

/**
 * The errors the embedded database's file system throws, by their WASI errno (it throws bare
 * `{errno}` objects, not Errors).
 */
const ERRNO_HINTS: Record<number, string> = {
  2: 'permission denied (EACCES)',
  20: 'a file is in the way (EEXIST)',
  44: 'no such file or directory (ENOENT)',
  51: 'no space left on the device (ENOSPC)',
  69: 'the file system is read-only (EROFS)',
}

/** One line for whatever start-up threw: PGlite's file system throws `{errno}` objects, which print as [object Object]. */
export function describeFailure(err: unknown): string {
  if (err instanceof Error) return err.message
  if (typeof err === 'object' && err !== null) {
    const { errno, code, message } = err as { errno?: unknown; code?: unknown; message?: unknown }
    if (typeof message === 'string' && message) return message
    if (typeof errno === 'number') return `the embedded database's files failed: ${ERRNO_HINTS[errno] ?? `errno ${errno}`} (LLMGUARD_DATA_DIR)`
    if (typeof code === 'string') return code
  }
  return String(err)
}
