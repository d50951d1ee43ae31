import type { Config, Secrets } from './config.js'
import { createApp, type App } from './app.js'
import { openDatabase, type Sql } from './db/connect.js'
import { loadMigrations, migrate } from './db/migrate.js'
import { resolveSecrets } from './db/secrets.js'
import { assertCanListen, HttpServer } from './http/server.js'
import { createLogger, type Logger } from './logger.js'

export interface Collector {
  port: number
  url: string
  sql: Sql
  config: Config
  secrets: Secrets
  logger: Logger
  embedded: boolean
  /** The wired domains (pipeline, jobs), for embedding and tests. */
  app: App
  /** Graceful stop: finish in-flight requests, stop jobs, close the database, release the lock. */
  stop(): Promise<void>
}

export interface StartOptions {
  logger?: Logger
  /** How long the first answer of a PostgreSQL server may take (tests shorten it). */
  databaseAnswerMs?: number
}

/**
 * A server at DATABASE_URL that is not PostgreSQL (an HTTP port, a proxy) answers the first
 * message with something postgres.js drops the connection over, and it reconnects at once,
 * hundreds of times a second, logging nothing: without a deadline start-up never ends.
 */
const DATABASE_ANSWER_MS = 30_000

/** Starts a collector: database (or the embedded one), migrations, HTTP server, jobs. */
export async function startCollector(config: Config, options: StartOptions = {}): Promise<Collector> {
  const logger = options.logger ?? createLogger(config.logLevel)
  const started = Date.now()
  await assertCanListen(config.port, config.host)
  const db = await openDatabase(config, logger)
  let http: HttpServer | undefined
  let app: App | undefined
  try {
    const migrations = loadMigrations()
    // the first statement: where a database that cannot be reached, or is not PostgreSQL, shows
    if (config.database.url) await firstAnswer(db.sql, config.database.url, options.databaseAnswerMs ?? DATABASE_ANSWER_MS)
    const onLockWait = (attempt: number, err: Error, migration: number | undefined) =>
      logger.warn({ attempt, migration, err: err.message }, 'migrations wait for a table lock held by another session (a long transaction, a backup?); retrying, with queries on the table let through meanwhile')
    const onMigrationLockWait = () => logger.warn('another collector is migrating this database: waiting for it to finish')
    const { applied, newer } = await migrate(db.sql, migrations, { onLockWait, onMigrationLockWait }).catch((err: unknown) => {
      throw config.database.url ? unreachableDatabase(err, config.database.url) : err
    })
    if (applied.length) logger.info({ applied }, 'migrations applied')
    // a newer collector migrated this database (a rollback of the binary, not of the data):
    // this one runs on a schema it does not know; going back means restoring a backup
    if (newer.length) {
      logger.warn({ newer, latest: migrations.at(-1)?.version ?? 0 }, 'the database was migrated by a newer collector: run that version, or restore the backup taken before the upgrade')
    }
    const secrets = await resolveSecrets(db.sql, config.secrets)
    http = new HttpServer({ config, logger })
    app = await createApp({
      config,
      sql: db.sql,
      secrets,
      logger,
      http,
      embedded: db.embedded,
      latestMigration: migrations.at(-1)?.version ?? 0,
    })
    const port = await http.listen(config.port, config.host)
    const scheme = config.tls ? 'https' : 'http'
    // an IPv6 address goes in brackets in a URL (http://[::1]:3000)
    const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host
    const url = `${scheme}://${shownHost}:${port}`
    logger.info({ url, embedded: db.embedded, ms: Date.now() - started }, 'collector ready')
    let stopping: Promise<void> | undefined
    const server = http
    const wired = app
    return {
      port,
      url,
      sql: db.sql,
      config,
      secrets,
      logger,
      embedded: db.embedded,
      app: wired,
      stop() {
        stopping ??= (async () => {
          await server.close(config.shutdownTimeoutMs)
          await wired.stop()
          await db.close()
          logger.info('collector stopped')
        })()
        return stopping
      },
    }
  } catch (err) {
    if (http) await http.close(0).catch(() => undefined)
    // the app's jobs and workers started with it: stopped before the pool closes under them
    if (app) await app.stop().catch(() => undefined)
    // start-up failed: nothing under way is worth waiting for (a query to a server that never
    // answers would hold the exit for the whole close timeout)
    await db.close(0).catch(() => undefined)
    throw err
  }
}

/** Errors of reaching a server, as Node and postgres.js name them. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'CONNECT_TIMEOUT'])

/**
 * A database that cannot be reached says so and where (host and port of DATABASE_URL, never
 * its credentials): a bare "connect ECONNREFUSED 10.0.0.5:5432" does not say it was the
 * database. Other errors pass through unchanged.
 */
function unreachableDatabase(err: unknown, url: string): unknown {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string' || !UNREACHABLE.has(code)) return err
  return new Error(`cannot reach the database${whereOf(url)} (DATABASE_URL): ${(err as Error).message}`, { cause: err })
}

/** ` at host:port` of a database URL, never its credentials. */
function whereOf(url: string): string {
  try {
    const u = new URL(url)
    return ` at ${u.hostname}:${u.port || '5432'}`
  } catch {
    // validated by the config already; without it the variable's name still says which
    return ''
  }
}

/** One trivial query within `ms`, or a start-up error saying the server did not answer as PostgreSQL. */
async function firstAnswer(sql: Sql, url: string, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the database${whereOf(url)} (DATABASE_URL) did not answer as PostgreSQL within ${Math.round(ms / 1000)} s: is it a PostgreSQL server, and the port its own?`)),
      ms,
    )
  })
  try {
    await Promise.race([sql`select 1`.catch((err: unknown) => Promise.reject(unreachableDatabase(err, url))), deadline])
  } finally {
    clearTimeout(timer)
  }
}
