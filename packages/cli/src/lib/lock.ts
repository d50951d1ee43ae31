import { randomUUID } from 'node:crypto'
import { closeSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, writeSync, type Stats } from 'node:fs'
import { hostname } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Who holds a lock: the host and, on Linux, the pid namespace say whether the pid means anything
 * here (a config on a disk several hosts or containers share); the nonce tells this holder from
 * an earlier one with the same pid.
 */
interface Owner {
  host: string
  ns: string | null
  pid: number
  nonce: string
}

export interface LockOptions {
  /** A lock older than this was left by a holder that died. */
  staleMs: number
  /** How long to wait for the holder before giving up. */
  waitMs: number
  /** Thrown when the wait is over. */
  busy: () => Error
}

/**
 * Runs `fn` holding the lock file `path`, made by hard-linking a file already holding its owner
 * (so no lock exists without one, where the filesystem has hard links). A lock whose owner is
 * gone, or older than `staleMs`, is taken over, one takeover at a time. One process at a time,
 * unless a holder stops for longer than `staleMs` (Ctrl-Z) and is taken over meanwhile.
 */
export async function withFileLock<T>(path: string, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const me: Owner = { host: hostname(), ns: pidNamespace(), pid: process.pid, nonce: randomUUID() }
  const mine = JSON.stringify(me)
  const giveUpAt = Date.now() + options.waitMs
  for (;;) {
    if (create(path, mine)) break
    const held = readLock(path)
    if (held && abandoned(held, me, options.staleMs) && takeOver(path, held.text, options.staleMs)) continue
    if (Date.now() > giveUpAt) throw options.busy()
    await sleep(50)
  }
  try {
    return await fn()
  } finally {
    // only our own: a lock taken over while this process was stopped is another's now
    if (readLock(path)?.text === mine) rmSync(path, { force: true })
  }
}

/** Files staged for a lock are named `<lock>.<uuid>.staged`. */
const STAGED = '.staged'

function create(path: string, content: string): boolean {
  const staged = `${path}.${randomUUID()}${STAGED}`
  // throws (a missing or read-only directory) before any lock exists
  writeFileSync(staged, content, { mode: 0o600 })
  try {
    linkSync(staged, path)
    return true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return false
    // no hard links here (FAT, some network shares), or on Windows a lock whose deletion is
    // pending: an exclusive create, written after (a crash between leaves an empty lock, waited
    // out by age)
    if (code === 'EPERM' || code === 'EACCES' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') return createExclusive(path, content)
    throw err
  } finally {
    rmSync(staged, { force: true })
  }
}

function createExclusive(path: string, content: string): boolean {
  let fd: number
  try {
    fd = openSync(path, 'wx', 0o600)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return false
    if (process.platform === 'win32' && (code === 'EPERM' || code === 'EACCES')) return false
    throw err
  }
  try {
    writeSync(fd, content)
  } finally {
    closeSync(fd)
  }
  return true
}

function readLock(path: string): { text: string; stats: Stats } | undefined {
  try {
    return { stats: statSync(path), text: readFileSync(path, 'utf8') }
  } catch {
    return undefined
  }
}

function abandoned(held: { text: string; stats: Stats }, me: Owner, staleMs: number): boolean {
  if (Date.now() - held.stats.mtimeMs > staleMs) return true
  let owner: Partial<Owner>
  try {
    owner = JSON.parse(held.text) as Partial<Owner>
  } catch {
    return false
  }
  // another host's or container's pid says nothing here: only its age counts
  if (owner.host !== me.host || owner.ns !== me.ns || typeof owner.pid !== 'number' || owner.pid === me.pid) return false
  try {
    process.kill(owner.pid, 0)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

/**
 * Removes the abandoned lock whose text was `judged`, if it is still that lock: under a guard
 * directory (mkdir is atomic), so two waiters never take over at once, and a lock made after
 * the judgement (each one's text is unique: its nonce) is never the one removed. A guard left
 * by a crash is removed once older than `staleMs`. Also sweeps staged files a crash left.
 * Returns whether this waiter did the takeover.
 */
function takeOver(path: string, judged: string, staleMs: number): boolean {
  const guard = `${path}.takeover`
  try {
    mkdirSync(guard)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    try {
      if (Date.now() - statSync(guard).mtimeMs > staleMs) rmSync(guard, { recursive: true, force: true })
    } catch {
      // gone meanwhile
    }
    return false
  }
  try {
    if (readLock(path)?.text === judged) rmSync(path, { force: true })
    sweepStaged(path, staleMs)
    return true
  } finally {
    rmSync(guard, { recursive: true, force: true })
  }
}

function sweepStaged(path: string, staleMs: number): void {
  const prefix = `${basename(path)}.`
  for (const name of readdirSync(dirname(path))) {
    if (!name.startsWith(prefix) || !name.endsWith(STAGED)) continue
    const file = join(dirname(path), name)
    try {
      if (Date.now() - statSync(file).mtimeMs > staleMs) rmSync(file, { force: true })
    } catch {
      // gone meanwhile
    }
  }
}

/** This process's pid namespace on Linux (`pid:[4026531836]`); null elsewhere. */
function pidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid')
  } catch {
    return null
  }
}
