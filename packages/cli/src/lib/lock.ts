import { randomUUID } from 'node:crypto'
import { linkSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs'
import { hostname } from 'node:os'
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
 * (so no lock ever exists without one). A lock whose owner is gone, or older than `staleMs`, is
 * taken over. One process at a time, unless a holder stops for longer than `staleMs` (Ctrl-Z)
 * and is taken over meanwhile.
 */
export async function withFileLock<T>(path: string, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const me: Owner = { host: hostname(), ns: pidNamespace(), pid: process.pid, nonce: randomUUID() }
  const mine = JSON.stringify(me)
  const giveUpAt = Date.now() + options.waitMs
  for (;;) {
    // taken, and still ours once taken: a takeover of a lock we judged abandoned moves another's
    // aside only by mistake, and puts it back (takeOver); this catches the rest
    if (create(path, mine) && readLock(path)?.text === mine) break
    const held = readLock(path)
    if (held && abandoned(held, me, options.staleMs)) {
      takeOver(path, held.stats)
      if (Date.now() > giveUpAt) throw options.busy()
      continue
    }
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

function create(path: string, content: string): boolean {
  const staged = `${path}.${randomUUID()}`
  // throws (a missing or read-only directory) before any lock exists
  writeFileSync(staged, content, { mode: 0o600 })
  try {
    linkSync(staged, path)
    return true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return false
    // Windows: a lock whose deletion is pending cannot be linked to until it is gone (the staged
    // file was written, so the directory is writable)
    if (process.platform === 'win32' && (code === 'EPERM' || code === 'EACCES')) return false
    throw err
  } finally {
    rmSync(staged, { force: true })
  }
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
 * Moves the abandoned lock (the file `judged` describes) aside and removes it. If another waiter
 * took it over first and made a lock of its own, the move took that one: it is put back (a link,
 * which fails if a newer lock is in place meanwhile).
 */
function takeOver(path: string, judged: Stats): void {
  const aside = `${path}.${randomUUID()}.stale`
  try {
    renameSync(path, aside)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return // gone meanwhile
    throw err
  }
  try {
    const moved = statSync(aside)
    if (moved.ino !== judged.ino || moved.dev !== judged.dev) linkSync(aside, path)
  } catch {
    // a newer lock is in place already
  } finally {
    rmSync(aside, { force: true })
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
