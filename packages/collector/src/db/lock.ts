import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'

/** Thrown when another live process holds the data dir. */
export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError'
}

interface LockOwner {
  pid: number
  host: string
  /** Process start time from /proc (Linux), so a recycled pid (e.g. pid 1 in a restarted container) is not mistaken for the owner. */
  started: string | null
}

function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Field 22 (starttime) counts from the closing parenthesis of the command name, which may hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null
  } catch {
    return null
  }
}

function isAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true // cannot check another host's processes: assume it is running
  try {
    process.kill(owner.pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  if (owner.started === null) return true
  const now = processStartTime(owner.pid)
  return now === null || now === owner.started
}

export interface DirLock {
  path: string
  release(): void
}

/**
 * Takes an exclusive lock on a data dir by creating `path` with O_EXCL. PGlite has no lock of
 * its own, and two processes on one dir silently lose acknowledged rows, so this is mandatory.
 * A lock left by a dead process is taken over.
 */
export function acquireDirLock(path: string): DirLock {
  const me: LockOwner = { pid: process.pid, host: hostname(), started: processStartTime(process.pid) }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600)
      writeSync(fd, JSON.stringify(me))
      closeSync(fd)
      let released = false
      return {
        path,
        release() {
          if (released) return
          released = true
          try {
            const owner = JSON.parse(readFileSync(path, 'utf8')) as LockOwner
            if (owner.pid === me.pid && owner.host === me.host) unlinkSync(path)
          } catch {
            // already gone
          }
        },
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    let owner: LockOwner | undefined
    try {
      owner = JSON.parse(readFileSync(path, 'utf8')) as LockOwner
    } catch {
      owner = undefined // half-written or unreadable: treat as stale
    }
    if (owner && isAlive(owner)) {
      throw new DataDirLockedError(
        `the data dir is in use by another collector (pid ${owner.pid} on ${owner.host}); ` +
          `stop it, or use another LLMGUARD_DATA_DIR. If no collector is running, delete ${path}.`,
      )
    }
    try {
      unlinkSync(path)
    } catch {
      // another process removed it first; retry the exclusive create
    }
  }
  throw new DataDirLockedError(`could not take the data dir lock ${path}; another collector is starting on it`)
}
