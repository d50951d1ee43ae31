import { createHash } from 'node:crypto'
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import type { Logger } from '../logger.js'
import { acquireDirLock } from './lock.js'

export interface EmbeddedDatabase {
  /** Where postgres.js connects: a unix socket path when it fits, else a loopback port. */
  connection: { path: string } | { host: string; port: number }
  dataDir: string
  close(): Promise<void>
}

/**
 * The data dir holds the database files, the instance's secrets among them (JWT signing key,
 * API key pepper): a dir that already existed (mkdir's mode applies only to a new one) and is
 * open to other users is made 0700, or refused when that is not ours to do.
 */
function makePrivate(root: string, logger: Logger): void {
  if (process.platform === 'win32') return
  const mode = statSync(root).mode & 0o777
  if ((mode & 0o077) === 0) return
  const was = mode.toString(8).padStart(4, '0')
  try {
    chmodSync(root, 0o700)
  } catch {
    throw new Error(
      `the data dir ${root} is open to other users (mode ${was}) and cannot be made private, not being this user's (uid ${process.getuid?.() ?? '?'}): make it this user's own (chown; in the Docker image, uid 1000) and chmod 700 it, or set LLMGUARD_DATA_DIR to a directory of your own`,
    )
  }
  logger.warn({ dataDir: root, was }, 'the data dir was open to other users: made it private (mode 0700)')
}

// sockaddr_un holds 108 bytes
const MAX_SOCKET_PATH = 100

/**
 * The temp-dir home of a data dir's socket: one name per data dir (so a crash leaves no new dir
 * behind each time), used only when it is a real directory of this user's that no one else can
 * open; anything else in its place (another user's squat, a symlink) gets a fresh random one.
 */
function privateSocketDir(root: string): { dir: string; created: boolean } {
  const named = join(tmpdir(), `llmguard-${createHash('sha256').update(root).digest('hex').slice(0, 16)}`)
  try {
    mkdirSync(named, { mode: 0o700 })
    // not "created": another starter on the data dir may find it and win the lock, and a refused
    // start must not remove the winner's socket. Left behind, the next start reuses it.
    return { dir: named, created: false }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  const st = lstatSync(named)
  const mine = st.isDirectory() && (st.mode & 0o077) === 0 && (process.getuid === undefined || st.uid === process.getuid())
  return mine ? { dir: named, created: false } : { dir: mkdtempSync(join(tmpdir(), 'llmguard-')), created: true }
}

/**
 * Where the socket goes: in the data dir when the path fits a socket address, else in a new
 * private (0700) directory under the system's temp dir. Never a loopback port: PGlite's server
 * asks no password, and any local user could connect to it (the instance's secrets are in the
 * database) or take its one connection. Windows keeps the port (no socket files there).
 */
function socketPlace(root: string): { path: string; privateDir?: string; created?: boolean } | { port: true } {
  const inDataDir = join(root, 'pg.sock')
  if (inDataDir.length <= MAX_SOCKET_PATH) return { path: inDataDir }
  if (process.platform === 'win32') return { port: true }
  const { dir: privateDir, created } = privateSocketDir(root)
  const path = join(privateDir, 'pg.sock')
  if (path.length > MAX_SOCKET_PATH) {
    if (created) rmSync(privateDir, { recursive: true, force: true })
    throw new Error(`the data dir's socket path (${inDataDir.length} bytes) and the temp dir's are too long for a socket address: use a shorter LLMGUARD_DATA_DIR or TMPDIR`)
  }
  return { path, privateDir, created }
}

/**
 * PGlite (Postgres in WASM) in `<data dir>/pg`, served over the Postgres wire protocol so the
 * same postgres.js code runs on it. It accepts one connection at a time: the pool must be 1.
 */
export async function openEmbeddedDatabase(dataDir: string, logger: Logger): Promise<EmbeddedDatabase> {
  const root = resolve(dataDir)
  mkdirSync(root, { recursive: true, mode: 0o700 })
  makePrivate(root, logger)
  const place = socketPlace(root)
  const removePrivateDir = () => {
    if ('privateDir' in place && place.privateDir) rmSync(place.privateDir, { recursive: true, force: true })
  }
  let lock: Awaited<ReturnType<typeof acquireDirLock>>
  try {
    lock = await acquireDirLock(join(root, 'collector.lock'), 'path' in place ? place.path : join(root, 'pg.sock'))
  } catch (err) {
    // refused: a dir this start made goes; one that was there is the owner's (its name is the data dir's)
    if ('created' in place && place.created) removePrivateDir()
    throw err
  }
  let db: PGlite | undefined
  let server: PGLiteSocketServer | undefined
  try {
    const started = Date.now()
    db = await PGlite.create(join(root, 'pg'), { extensions: { pg_trgm } })
    if ('path' in place) {
      // a socket file left by a crashed owner would make listen() fail with EADDRINUSE
      rmSync(place.path, { force: true })
      server = new PGLiteSocketServer({ db, path: place.path })
    } else server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0 })
    await server.start()
    logger.info({ dataDir: root, ms: Date.now() - started }, 'embedded database open')
    const connection = 'path' in place ? { path: place.path } : { host: '127.0.0.1', port: (server as unknown as { port: number }).port }
    const opened = { db, server }
    return {
      connection,
      dataDir: root,
      async close() {
        try {
          await opened.server.stop()
          // close() checkpoints, so the files on disk are consistent for the next start
          await opened.db.close()
        } finally {
          removePrivateDir()
          lock.release()
        }
      },
    }
  } catch (err) {
    await server?.stop().catch(() => undefined)
    await db?.close().catch(() => undefined)
    removePrivateDir()
    lock.release()
    throw err
  }
}
