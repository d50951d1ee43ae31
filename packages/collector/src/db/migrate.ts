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
  /** Told once when another session holds the migration lock (another collector migrating). */
  onMigrationLockWait?: () => void
}

/**
 * Applies pending migrations, each in its own transaction under a transaction-scoped advisory
 * lock: a second instance starting at the same moment waits, then finds nothing left to do. A
 * migration that waits too long for a table lock gives up and is tried again (see
 * MigrateOptions), starting from itself: those before it are committed, their locks released.
 * Returns the versions this call applied, and those the database has that `migrations` does
 * not know (a newer collector applied them).
 */
export async function migrate(sql: Sql, migrations = loadMigrations(), options: MigrateOptions = {}): Promise<{ applied: number[]; newer: number[] }> {
  const applied: number[] = []
  let toldWait = false
  const onWait = () => {
    if (!toldWait) options.onMigrationLockWait?.()
    toldWait = true
  }
  for (let attempt = 1; ; ) {
    try {
      const step = await migrateNext(sql, migrations, options.lockTimeoutMs ?? 2_000, onWait)
      if (step.applied === undefined) return { applied, newer: step.newer }
      applied.push(step.applied)
      attempt = 1
    } catch (err) {
      if ((err as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw err
      options.onLockWait?.(attempt, err as Error, (err as { migration?: number }).migration)
      // longer pauses while the holder stays: the queue behind each attempt goes through meanwhile
      const base = options.retryMs ?? 2_000
      await new Promise((r) => setTimeout(r, Math.min(base * 2 ** (attempt - 1), base * 8)))
      attempt++
    }
  }
}

/** Applies the first pending migration, if any, in one transaction. */
async function migrateNext(sql: Sql, migrations: Migration[], lockTimeoutMs: number, onWait: () => void): Promise<{ applied: number | undefined; newer: number[] }> {
  return sql.begin(async (tx) => {
    // a migration may take longer than the pool's 30 s statement_timeout (an index on a big table)
    await tx`set local statement_timeout = 0`
    const [free] = await tx<{ locked: boolean }[]>`select pg_try_advisory_xact_lock(${MIGRATION_LOCK}) as locked`
    if (!free!.locked) {
      onWait()
      await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK})`
    }
    // once it is this instance's turn: a table lock is waited for a bounded time only
    await tx.unsafe(`set local lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`)
    await tx`create table if not exists schema_migrations (
      version integer primary key,
      name text not null,
      applied_at timestamptz not null default now()
    )`
    const rows = await tx<{ version: number }[]>`select version from schema_migrations`
    const done = new Set(rows.map((r) => r.version))
    const known = new Set(migrations.map((m) => m.version))
    const newer = [...done].filter((v) => !known.has(v)).sort((a, b) => a - b)
    const next = migrations.find((m) => !done.has(m.version))
    if (!next) return { applied: undefined, newer }
    try {
      await tx.unsafe(next.sql)
    } catch (err) {
      ;(err as { migration?: number }).migration = next.version
      throw err
    }
    await tx`insert into schema_migrations (version, name) values (${next.version}, ${next.name})`
    return { applied: next.version, newer }
  }) as Promise<{ applied: number | undefined; newer: number[] }>
}

/** The highest applied version, or 0 on a database never migrated. */
export async function appliedVersion(sql: Sql): Promise<number> {
  const [row] = await sql<{ exists: boolean }[]>`select to_regclass('schema_migrations') is not null as exists`
  if (!row?.exists) return 0
  const [max] = await sql<{ v: number | null }[]>`select max(version)::int as v from schema_migrations`
  return max?.v ?? 0
}
