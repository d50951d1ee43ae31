import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Sql } from './connect.js'

export interface Migration {
  version: number
  name: string
  sql: string
}

/** Arbitrary constant shared by every instance: the advisory lock that serialises migrations. */
const MIGRATION_LOCK = 7_400_001

const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/

/** Migrations sit beside this module in src/, and are copied beside the bundle in dist/. */
export function migrationsDir(): string {
  return fileURLToPath(new URL('./migrations/', import.meta.url))
}

export function loadMigrations(dir = migrationsDir()): Migration[] {
  const migrations = readdirSync(dir)
    .map((file) => ({ file, match: FILE_PATTERN.exec(file) }))
    .filter((entry) => entry.match)
    .map(({ file, match }) => ({
      version: Number(match![1]),
      name: match![2]!,
      sql: readFileSync(`${dir}/${file}`, 'utf8'),
    }))
    .sort((a, b) => a.version - b.version)
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration numbers must run 0001, 0002, … without gaps; found ${m.version} at position ${i + 1}`)
  })
  return migrations
}

/** The SQLSTATE of a lock wait cut short by lock_timeout. */
const LOCK_NOT_AVAILABLE = '55P03'

export interface MigrateOptions {
  /**
   * How long one attempt waits for a table lock (a migration altering a table waits for every
   * transaction using it, and every query on the table then queues behind it): the attempt then
   * gives up, letting the queue through, and the next one starts after `retryMs`.
   */
  lockTimeoutMs?: number
  retryMs?: number
  /** Told of each attempt that gave up waiting, and which migration waited (the caller logs it). */
  onLockWait?: (attempt: number, err: Error, version: number | undefined) => void
}

/**
 * Applies pending migrations in one transaction under a transaction-scoped advisory lock:
 * a second instance starting at the same moment waits, then finds nothing left to do.
 * Returns the versions this call applied, and those the database has that `migrations` does
 * not know (a newer collector applied them).
 */
export async function migrate(sql: Sql, migrations = loadMigrations(), options: MigrateOptions = {}): Promise<{ applied: number[]; newer: number[] }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await migrateOnce(sql, migrations, options.lockTimeoutMs ?? 2_000)
    } catch (err) {
      if ((err as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw err
      options.onLockWait?.(attempt, err as Error, (err as { migration?: number }).migration)
      // longer pauses while the holder stays: the queue behind each attempt goes through meanwhile
      const base = options.retryMs ?? 2_000
      await new Promise((r) => setTimeout(r, Math.min(base * 2 ** (attempt - 1), base * 8)))
    }
  }
}

async function migrateOnce(sql: Sql, migrations: Migration[], lockTimeoutMs: number): Promise<{ applied: number[]; newer: number[] }> {
  return sql.begin(async (tx) => {
    // a migration may take longer than the pool's 30 s statement_timeout (an index on a big table)
    await tx`set local statement_timeout = 0`
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK})`
    // once it is this instance's turn: a table lock is waited for a bounded time only
    await tx.unsafe(`set local lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`)
    await tx`create table if not exists schema_migrations (
      version integer primary key,
      name text not null,
      applied_at timestamptz not null default now()
    )`
    const rows = await tx<{ version: number }[]>`select version from schema_migrations`
    const applied = new Set(rows.map((r) => r.version))
    const known = new Set(migrations.map((m) => m.version))
    const done: number[] = []
    for (const m of migrations) {
      if (applied.has(m.version)) continue
      try {
        await tx.unsafe(m.sql)
      } catch (err) {
        ;(err as { migration?: number }).migration = m.version
        throw err
      }
      await tx`insert into schema_migrations (version, name) values (${m.version}, ${m.name})`
      done.push(m.version)
    }
    return { applied: done, newer: [...applied].filter((v) => !known.has(v)).sort((a, b) => a - b) }
  }) as Promise<{ applied: number[]; newer: number[] }>
}

/** The highest applied version, or 0 on a database never migrated. */
export async function appliedVersion(sql: Sql): Promise<number> {
  const [row] = await sql<{ exists: boolean }[]>`select to_regclass('schema_migrations') is not null as exists`
  if (!row?.exists) return 0
  const [max] = await sql<{ v: number | null }[]>`select max(version)::int as v from schema_migrations`
  return max?.v ?? 0
}
