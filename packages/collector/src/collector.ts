import type { Config, Secrets } from './config.js'
import { createApp, type App } from './app.js'
import { openDatabase, type Sql } from './db/connect.js'
import { loadMigrations, migrate } from './db/migrate.js'
import { DATABASE_CONNECT_MS, firstAnswer, unreachableDatabase } from './db/reach.js'
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
  /** How long connecting to DATABASE_URL's host, and then PostgreSQL's handshake, may take (tests shorten it). */
  databaseConnectMs?: number
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
  const connectMs = options.databaseConnectMs ?? DATABASE_CONNECT_MS
  const db = await openDatabase(config, logger, { connectTimeoutMs: connectMs })
  let http: HttpServer | undefined
  let app: App | undefined
  try {
    const migrations = loadMigrations()
    // the first statement: where a database that cannot be reached, or is not PostgreSQL, shows
    if (config.database.url) await firstAnswer(db.sql, config.database.url, { connectMs, answerMs: options.databaseAnswerMs ?? DATABASE_ANSWER_MS })
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
