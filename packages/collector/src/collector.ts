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
}

/** Starts a collector: database (or the embedded one), migrations, HTTP server, jobs. */
export async function startCollector(config: Config, options: StartOptions = {}): Promise<Collector> {
  const logger = options.logger ?? createLogger(config.logLevel)
  const started = Date.now()
  await assertCanListen(config.port, config.host)
  const db = await openDatabase(config, logger)
  let http: HttpServer | undefined
  try {
    const migrations = loadMigrations()
    // the first statement: where a database that cannot be reached shows
    const applied = await migrate(db.sql, migrations).catch((err: unknown) => {
      throw config.database.url ? unreachableDatabase(err, config.database.url) : err
    })
    if (applied.length) logger.info({ applied }, 'migrations applied')
    const secrets = await resolveSecrets(db.sql, config.secrets)
    http = new HttpServer({ config, logger })
    const app = await createApp({
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
    const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host
    const url = `${scheme}://${shownHost}:${port}`
    logger.info({ url, embedded: db.embedded, ms: Date.now() - started }, 'collector ready')
    let stopping: Promise<void> | undefined
    const server = http
    return {
      port,
      url,
      sql: db.sql,
      config,
      secrets,
      logger,
      embedded: db.embedded,
      app,
      stop() {
        stopping ??= (async () => {
          await server.close(config.shutdownTimeoutMs)
          await app.stop()
          await db.close()
          logger.info('collector stopped')
        })()
        return stopping
      },
    }
  } catch (err) {
    if (http) await http.close(0).catch(() => undefined)
    await db.close().catch(() => undefined)
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
  let where = ''
  try {
    const u = new URL(url)
    where = ` at ${u.hostname}:${u.port || '5432'}`
  } catch {
    // validated by the config already; without it the variable's name still says which
  }
  return new Error(`cannot reach the database${where} (DATABASE_URL): ${(err as Error).message}`, { cause: err })
}
