import { closeSync, existsSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { connect } from 'node:net'
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

/** Whether a unix socket has a listener: a socket file left by a dead process refuses connections. */
function socketListening(path: string): Promise<boolean> {
  if (!existsSync(path)) return Promise.resolve(false)
  return new Promise((resolve) => {
    const socket = connect(path)
    const done = (alive: boolean) => {
      socket.destroy()
      resolve(alive)
    }
    socket.setTimeout(1000, () => done(true)) // no answer is not proof of death
    socket.once('connect', () => done(true))
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'))
  })
}

async function isAlive(owner: LockOwner, probeSocket?: string): Promise<boolean> {
  if (owner.host !== hostname()) {
    // Another host (e.g. a recreated container on the same volume): its pid means nothing
    // here, but the database socket it serves in the data dir answers while it runs.
    return probeSocket && existsSync(probeSocket) ? socketListening(probeSocket) : true
  }
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
 * A lock left by a dead process is taken over. `probeSocket` is the unix socket the owner
 * serves while alive, used when the lock was written on another host.
 */
export async function acquireDirLock(path: string, probeSocket?: string): Promise<DirLock> {
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
    if (owner && (await isAlive(owner, probeSocket))) {
      throw new DataDirLockedError(
        `the data dir is in use by another collector (pid ${owner.pid} on ${owner.host}); ` +
          `stop it, or use another data dir (LLMGUARD_DATA_DIR, or --data-dir of \`llmguard collector start\`). If no collector is running, delete ${path}.`,
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
