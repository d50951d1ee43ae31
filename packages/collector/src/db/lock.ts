import { randomBytes } from 'node:crypto'
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
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
  /**
   * Unique to one taking of the lock, so its release tells it from a lock of the same pid and
   * host name (pid 1 of a container recreated under a fixed host name). Absent in locks written
   * before it was added.
   */
  token?: string
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
 * Takes an exclusive lock on a data dir: `path` appears with its whole content at once (a
 * hard link of a file written aside; link() fails when `path` exists), so no reader ever sees
 * it half-written. PGlite has no lock of its own, and two processes on one dir silently lose
 * acknowledged rows, so this is mandatory. A lock left by a dead process is removed (see
 * removeStale) and the create tried again. `probeSocket` is the unix socket the owner serves
 * while alive, used when the lock was written on another host.
 */
export async function acquireDirLock(path: string, probeSocket?: string): Promise<DirLock> {
  const unique = `${process.pid}.${randomBytes(6).toString('hex')}`
  const me: LockOwner = { pid: process.pid, host: hostname(), started: processStartTime(process.pid), token: unique }
  const mine = JSON.stringify(me)
  const draft = `${path}.${unique}.new`
  writeFileSync(draft, mine, { mode: 0o600, flag: 'wx' })
  try {
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        createWhole(draft, path, mine)
        return ownLock(path, mine, `${path}.${unique}.released`)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const seen = await settledContent(path)
      if (seen === undefined) continue // removed meanwhile: try again
      let owner: LockOwner | undefined
      try {
        owner = JSON.parse(seen) as LockOwner
      } catch {
        owner = undefined // unreadable, and not being written: stale
      }
      if (owner && (await isAlive(owner, probeSocket))) {
        throw new DataDirLockedError(
          `the data dir is in use by another collector (pid ${owner.pid} on ${owner.host}); ` +
            `stop it, or use another data dir (LLMGUARD_DATA_DIR, or --data-dir of \`llmguard collector start\`). If no collector is running, delete ${path}.`,
        )
      }
      await removeStale(path, seen, `${path}.${unique}.stale`)
    }
  } finally {
    rmSync(draft, { force: true })
  }
  throw new DataDirLockedError(`could not take the data dir lock ${path}; another collector is starting on it`)
}

/** How long a lock that does not parse may be one being written (no hard links: create, then write). */
const LOCK_WRITE_GRACE_MS = 5_000

/**
 * The lock's content, waited for while it does not parse and is younger than LOCK_WRITE_GRACE_MS:
 * on a filesystem without hard links a lock is created empty and then written, and a reader in
 * between must not take it for a stale one.
 */
async function settledContent(path: string): Promise<string | undefined> {
  // bounded by this process's own clock too: a modification time in the future (a clock set
  // back, another host's clock) must not make the wait endless
  const waitUntil = Date.now() + LOCK_WRITE_GRACE_MS
  for (;;) {
    const text = readIfThere(path)
    if (text === undefined) return undefined
    try {
      JSON.parse(text)
      return text
    } catch {
      let age: number
      try {
        age = Date.now() - statSync(path).mtimeMs
      } catch {
        return undefined
      }
      if (age > LOCK_WRITE_GRACE_MS || Date.now() >= waitUntil) return text
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

/** A takeover guard older than this was left by a starter that died in the middle of one. */
const TAKEOVER_GUARD_STALE_MS = 30_000

/**
 * Removes the lock at `path` if it still holds `seen` (the content judged stale). Takeovers are
 * one at a time, under a guard directory (mkdir is atomic): without it a starter could remove a
 * lock another one had just created after the same stale one. Creating a lock needs no guard: it
 * only succeeds while there is none, and a taker that finds a new one there leaves it.
 * What is left: breaking a guard abandoned by a starter that died mid-takeover (older than 30 s)
 * is not atomic, so two starters doing that at the same moment could both take over; that needs
 * a crash in a takeover and then two collectors started within a few milliseconds of each other.
 */
async function removeStale(path: string, seen: string, aside: string): Promise<void> {
  const guard = `${path}.takeover`
  for (let waited = 0; ; waited += 50) {
    try {
      mkdirSync(guard, { mode: 0o700 })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    let age = 0
    try {
      age = Date.now() - statSync(guard).mtimeMs
    } catch {
      continue // released meanwhile
    }
    if (age > TAKEOVER_GUARD_STALE_MS) rmSync(guard, { recursive: true, force: true })
    else if (waited > TAKEOVER_GUARD_STALE_MS) throw new DataDirLockedError(`could not take the data dir lock ${path}: another collector is taking it over`)
    else await new Promise((r) => setTimeout(r, 50))
  }
  try {
    removeIfHolds(path, seen, aside) // gone or replaced meanwhile is as good
  } finally {
    rmSync(guard, { recursive: true, force: true })
  }
}

/**
 * Creates `path` holding `content`, failing with EEXIST when it exists: a hard link of the
 * draft, or (a filesystem without hard links) an exclusive create and a write.
 */
function createWhole(draft: string, path: string, content: string): void {
  try {
    linkSync(draft, path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err
    writeFileSync(path, content, { mode: 0o600, flag: 'wx' })
  }
}

function readIfThere(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

/**
 * Removes `path` only if it holds `content`, and never a file that replaced it: reading and then
 * removing would remove a lock created between the two (another starter's, after the owner of
 * the one read released it). The file is renamed aside first, an atomic step after which that
 * one file is ours to check: removed when it holds `content`, else linked back. Left: while a
 * wrong file is aside, `path` is free for a moment; a lock created in that moment stands, and
 * the one that was aside is dropped (its owner has lost the lock).
 */
function removeIfHolds(path: string, content: string, aside: string): void {
  if (readIfThere(path) !== content) return // the usual case: not even moved
  try {
    renameSync(path, aside)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  try {
    const moved = readIfThere(aside)
    if (moved === undefined || moved === content) return
    try {
      createWhole(aside, path, moved)
    } catch {
      // EEXIST: a lock created while `path` was free stands
    }
  } finally {
    rmSync(aside, { force: true })
  }
}

/** The lock this process took; released only while the file is still this taking's. */
function ownLock(path: string, mine: string, aside: string): DirLock {
  let released = false
  return {
    path,
    release() {
      if (released) return
      released = true
      try {
        removeIfHolds(path, mine, aside)
      } catch {
        // a lock that cannot be removed is taken over at the next start (its owner is gone)
      }
    },
  }
}
