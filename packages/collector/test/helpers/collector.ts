import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import postgres from 'postgres'
import { inject } from 'vitest'
import { ApiClient } from '@llmguard/shared'
import { loadConfig } from '../../src/config.js'
import { startCollector, type Collector } from '../../src/collector.js'
import { createLogger, type Logger } from '../../src/logger.js'

export interface TestCollector extends Collector {
  client: ApiClient
  /** The embedded data dir (PGlite runs) or undefined on real Postgres. */
  dataDir?: string
  /** The database URL on real Postgres runs. */
  databaseUrl?: string
  /** Stops the collector and deletes its database. */
  close(): Promise<void>
}

export const onRealPostgres = () => Boolean(process.env.TEST_DATABASE_URL)

/** A fresh, empty database on the real Postgres of TEST_DATABASE_URL; dropped by the returned function. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = process.env.TEST_DATABASE_URL
  if (!admin) throw new Error('TEST_DATABASE_URL is not set')
  const name = `llmguard_t_${randomBytes(6).toString('hex')}`
  const sql = postgres(admin, { max: 1, onnotice: () => undefined })
  await sql.unsafe(`create database ${name}`)
  await sql.end()
  const url = new URL(admin)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      const s = postgres(admin, { max: 1, onnotice: () => undefined })
      await s.unsafe(`drop database if exists ${name} with (force)`)
      await s.end()
    },
  }
}

/** A copy of the migrated embedded template in a new temp dir. */
export function copyTemplateDataDir(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'llmguard-test-')), 'data')
  cpSync(inject('pgliteTemplateDir'), dir, { recursive: true })
  return dir
}

export interface StartOptions {
  env?: Record<string, string>
  /** Reuse an embedded data dir (e.g. to test a restart); by default a fresh copy of the template. */
  dataDir?: string
  /** Reuse a database (real Postgres); by default a fresh one. */
  databaseUrl?: string
  /** Keep the database after close() (to start again on it). */
  keepData?: boolean
  /** A logger of the test's own (e.g. one capturing lines); by default a silent one. */
  logger?: Logger
}

/**
 * Starts a collector on port 0 against a fresh database: a copy of the migrated PGlite
 * template by default, a new database on real Postgres when TEST_DATABASE_URL is set.
 */
export async function startTestCollector(options: StartOptions = {}): Promise<TestCollector> {
  let dataDir: string | undefined
  let databaseUrl = options.databaseUrl
  let drop: (() => Promise<void>) | undefined
  if (!databaseUrl && onRealPostgres() && !options.dataDir) {
    const db = await createTestDatabase()
    databaseUrl = db.url
    drop = db.drop
  } else if (!databaseUrl) {
    dataDir = options.dataDir ?? copyTemplateDataDir()
  }
  const level = process.env.TEST_LOG_LEVEL ?? 'silent'
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: level,
    // test files sign up hundreds of users from one address (auth-limits.test.ts tests the limit)
    SIGNUP_LIMIT: '100000',
    ...(dataDir ? { LLMGUARD_DATA_DIR: dataDir } : {}),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl, DATABASE_POOL_SIZE: '4' } : {}),
    ...options.env,
  })
  let collector: Collector
  try {
    collector = await startCollector(config, { logger: options.logger ?? createLogger(level) })
  } catch (err) {
    await drop?.()
    throw err
  }
  const client = new ApiClient({ baseUrl: collector.url })
  return {
    ...collector,
    client,
    dataDir,
    databaseUrl,
    async close() {
      await client.close()
      await collector.stop()
      if (options.keepData) return
      if (dataDir && !options.dataDir) rmSync(join(dataDir, '..'), { recursive: true, force: true })
      await drop?.()
    },
  }
}

/**
 * A database of its own for collectors started one after another on it (a restart): a copy of
 * the migrated template, or a new database on real Postgres. `where` goes to startTestCollector
 * (a given database outlives each collector's close()); remove() when done.
 */
export async function ownDatabase(): Promise<{ where: { dataDir?: string; databaseUrl?: string }; remove(): Promise<void> }> {
  const db = onRealPostgres() ? await createTestDatabase() : undefined
  const dataDir = db ? undefined : copyTemplateDataDir()
  return {
    where: { dataDir, databaseUrl: db?.url },
    async remove() {
      if (dataDir) rmSync(join(dataDir, '..'), { recursive: true, force: true })
      await db?.drop()
    },
  }
}

/** A TCP port free right now on 127.0.0.1 (bound by the OS on port 0, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}
