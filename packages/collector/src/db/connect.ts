import postgres from 'postgres'
import type { Config } from '../config.js'
import type { Logger } from '../logger.js'
import { openEmbeddedDatabase } from './embedded.js'

export type Sql = postgres.Sql<{}>
/** A pool or a transaction: a function taking `Db` works both inside and outside `sql.begin`. */
export type Db = postgres.ISql<{}>

export interface Database {
  sql: Sql
  /** True on the embedded PGlite database: one connection, one instance, no LISTEN. */
  embedded: boolean
  /** Waits up to `timeoutSeconds` (default 5) for queries under way, then closes. */
  close(timeoutSeconds?: number): Promise<void>
}

const sharedOptions = {
  // numbers come back as JSON numbers: bigint (20) and numeric (1700) would otherwise be strings
  types: {
    bigint: {
      to: 20,
      from: [20],
      serialize: (x: number | bigint) => String(x),
      parse: (x: string) => Number(x),
    },
  },
  transform: { undefined: null },
  onnotice: () => undefined,
  // date_trunc and ::date on timestamptz follow the session time zone: rollups are UTC
  // statement_timeout bounds every statement; the search indexer finds the collector's open
  // transactions by this application_name (logs/indexer.ts). A DATABASE_URL cannot override
  // these (withOwnSessionSettings)
  connection: { application_name: 'llmguard-collector', TimeZone: 'UTC', statement_timeout: 30_000 },
} satisfies postgres.Options<{}>

/**
 * DATABASE_URL without the session settings the collector fixes itself: postgres.js lets the
 * URL's query override `connection`, and UTC rollups, the statement timeout and the
 * application_name the search indexer finds the collector's sessions by must hold.
 */
export function withOwnSessionSettings(url: string): string {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return url
  }
  const own = new Set(Object.keys(sharedOptions.connection).map((k) => k.toLowerCase()))
  for (const key of [...u.searchParams.keys()]) if (own.has(key.toLowerCase())) u.searchParams.delete(key)
  return u.toString()
}

/**
 * Connects to DATABASE_URL, or opens the embedded database in the data dir when it is unset.
 * `connectTimeoutMs` bounds connecting and PostgreSQL's handshake (default 10 s).
 */
export async function openDatabase(config: Config, logger: Logger, options: { connectTimeoutMs?: number } = {}): Promise<Database> {
  if (config.database.url) {
    const sql = postgres(withOwnSessionSettings(config.database.url), {
      ...sharedOptions,
      max: config.database.poolSize,
      prepare: config.database.prepare,
      // seconds; postgres.js takes fractions
      connect_timeout: (options.connectTimeoutMs ?? 10_000) / 1000,
      idle_timeout: 60,
    }) as unknown as Sql
    return {
      sql,
      embedded: false,
      async close(timeoutSeconds = 5) {
        await sql.end({ timeout: timeoutSeconds })
      },
    }
  }
  const embedded = await openEmbeddedDatabase(config.dataDir, logger)
  const sql = postgres({
    ...sharedOptions,
    ...embedded.connection,
    database: 'postgres',
    username: 'postgres',
    max: 1,
    prepare: true,
    connect_timeout: 10,
  }) as unknown as Sql
  return {
    sql,
    embedded: true,
    async close(timeoutSeconds = 5) {
      try {
        await sql.end({ timeout: timeoutSeconds })
      } finally {
        await embedded.close()
      }
    },
  }
}
