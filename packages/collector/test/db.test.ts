import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, Socket } from 'node:net'
import postgres from 'postgres'
import { afterAll, describe, expect, it } from 'vitest'
import { appliedVersion, loadMigrations, migrate } from '../src/db/migrate.js'
import { acquireDirLock, DataDirLockedError } from '../src/db/lock.js'
import type { Sql } from '../src/db/connect.js'
import { copyTemplateDataDir, createTestDatabase, onRealPostgres, startTestCollector } from './helpers/collector.js'
import { spawnCollector } from './helpers/process.js'
import { createLogger } from '../src/logger.js'

const migrations = loadMigrations()
const latest = migrations.at(-1)!.version

/** A user and a project straight in SQL (a database migrated only part of the way has no API): the project's id. */
async function insertProject(sql: Sql, name: string): Promise<string> {
  const [user] = await sql<{ id: string }[]>`insert into users (email, password_hash) values (${`${name}@example.com`}, 'x') returning id`
  const [project] = await sql<{ id: string }[]>`insert into projects (user_id, name) values (${user!.id}, ${name}) returning id`
  return project!.id
}

describe('migrations', () => {
  it('are numbered without gaps', () => {
    expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, i) => i + 1))
  })

  it('apply to a fresh database, and a re-run is a no-op', async () => {
    const collector = await startTestCollector()
    try {
      expect(await appliedVersion(collector.sql)).toBe(latest)
      expect(await migrate(collector.sql, migrations)).toEqual({ applied: [], newer: [] })
      const [row] = await collector.sql<{ n: number }[]>`select count(*)::int as n from schema_migrations`
      expect(row!.n).toBe(migrations.length)
    } finally {
      await collector.close()
    }
  })

  it.runIf(onRealPostgres())('two runners at once apply each migration exactly once', async () => {
    const db = await createTestDatabase()
    const a = postgres(db.url, { max: 2, onnotice: () => undefined }) as unknown as Sql
    const b = postgres(db.url, { max: 2, onnotice: () => undefined }) as unknown as Sql
    try {
      const [ra, rb] = await Promise.all([migrate(a, migrations), migrate(b, migrations)])
      expect([...ra.applied, ...rb.applied].sort((x, y) => x - y)).toEqual(migrations.map((m) => m.version))
      const rows = await a<{ version: number }[]>`select version from schema_migrations order by version`
      expect(rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version))
    } finally {
      await a.end()
      await b.end()
      await db.drop()
    }
  })

  it.runIf(onRealPostgres())('0008 folds the case of the search text indexed before it', async () => {
    const db = await createTestDatabase()
    const sql = postgres(db.url, { max: 1, onnotice: () => undefined }) as unknown as Sql
    try {
      await migrate(sql, migrations.filter((m) => m.version < 8))
      const project = await insertProject(sql, 'fold')
      await sql`insert into llm_request_text (project_id, id, body) values (${project}, gen_random_uuid(), ${'The Needle ÉTÉ\nOK'})`
      await migrate(sql, migrations)
      const rows = await sql<{ body: string }[]>`select body from llm_request_text`
      expect(rows.map((r) => r.body)).toEqual(['the needle été\nok'])
      const [index] = await sql<{ n: number }[]>`select count(*)::int as n from pg_indexes where indexname = 'llm_request_text_trgm'`
      expect(index!.n).toBe(1)
    } finally {
      await sql.end()
      await db.drop()
    }
  })

  it.runIf(onRealPostgres())('0011 fills in the blocked counts of the last day from the rows', async () => {
    const db = await createTestDatabase()
    const sql = postgres(db.url, { max: 1, onnotice: () => undefined }) as unknown as Sql
    try {
      await migrate(sql, migrations.filter((m) => m.version < 11))
      const project = await insertProject(sql, 'blk')
      // an hour ago: 10 blocked calls (half priced at $0), a real error, and a blocked call that
      // arrived three days ago; three days ago: a blocked call (outside the day the rules read)
      await sql`
        insert into llm_requests (project_id, id, prompt, response, model, latency, tokens, status, risk_score, risk_reasons, cost, metadata, "timestamp", created_at)
        select ${project}, gen_random_uuid(), 'p', '', 'gpt-4', 0, 0, 'error', 0, '[]', case when i % 2 = 0 then 0 end,
          case when i = 11 then '{}'::jsonb else '{"llmguardBlocked": "ENDPOINT_DISABLED"}'::jsonb end,
          case when i = 13 then now() - interval '3 days' else now() - interval '1 hour' end,
          case when i >= 12 then now() - interval '3 days' else now() end
        from generate_series(1, 13) i`
      await migrate(sql, migrations)
      const rows = await sql<{ errors: number; blocked: number; priced: number }[]>`
        select errors::int, blocked::int, blocked_priced::int as priced from request_rollups order by hour desc`
      expect(rows).toEqual([{ errors: 12, blocked: 10, priced: 5 }, { errors: 1, blocked: 0, priced: 0 }])
    } finally {
      await sql.end()
      await db.drop()
    }
  })

  it.runIf(onRealPostgres())('wait for a table lock a bounded time per attempt, saying so, and finish once it is free', async () => {
    const db = await createTestDatabase()
    const sql = postgres(db.url, { max: 2, onnotice: () => undefined }) as unknown as Sql
    const holder = postgres(db.url, { max: 1, onnotice: () => undefined })
    try {
      await migrate(sql, migrations.filter((m) => m.version < 10))
      // a long reader (a backup, a report) holds the table 0011 alters
      const reserved = await holder.reserve()
      await reserved`begin`
      await reserved`lock table request_rollups in access share mode`
      const waits: (number | undefined)[] = []
      const running = migrate(sql, migrations, { lockTimeoutMs: 100, retryMs: 20, onLockWait: (_attempt, _err, version) => waits.push(version) })
      while (waits.length < 2) await new Promise((r) => setTimeout(r, 20))
      // between attempts the queue behind the migration moves: a read of the table is not stuck
      const t = Date.now()
      await sql`select count(*) from request_rollups`
      expect(Date.now() - t).toBeLessThan(1_000)
      // each migration is its own transaction: 0010 is in, and only 0011 waits
      expect((await sql<{ v: number }[]>`select max(version)::int as v from schema_migrations`)[0]!.v).toBe(10)
      await reserved`commit`
      reserved.release()
      expect((await running).applied).toEqual(migrations.filter((m) => m.version >= 10).map((m) => m.version))
      expect(waits.every((v) => v === 11)).toBe(true) // the warning names the migration that waited
    } finally {
      await holder.end({ timeout: 0 })
      await sql.end()
      await db.drop()
    }
  })

  it('a failing migration leaves nothing half-applied', async () => {
    const collector = await startTestCollector()
    try {
      const broken = [...migrations, { version: latest + 1, name: 'broken', sql: 'create table half_done (id int); select 1/0;' }]
      await expect(migrate(collector.sql, broken)).rejects.toThrow(/division by zero/)
      const [row] = await collector.sql<{ t: string | null }[]>`select to_regclass('half_done')::text as t`
      expect(row!.t).toBeNull()
      expect(await appliedVersion(collector.sql)).toBe(latest)
    } finally {
      await collector.close()
    }
  })
})

describe('database connections', () => {
  it.runIf(onRealPostgres())("keep the collector's own session settings whatever DATABASE_URL asks for", async () => {
    const db = await createTestDatabase()
    const url = new URL(db.url)
    url.searchParams.set('application_name', 'renamed')
    url.searchParams.set('TimeZone', 'Europe/Berlin')
    url.searchParams.set('statement_timeout', '0')
    const collector = await startTestCollector({ databaseUrl: url.toString(), keepData: true })
    try {
      const [row] = await collector.sql<{ name: string; tz: string; timeout: string }[]>`
        select current_setting('application_name') as name, current_setting('TimeZone') as tz, current_setting('statement_timeout') as timeout`
      expect(row).toEqual({ name: 'llmguard-collector', tz: 'UTC', timeout: '30s' })
    } finally {
      await collector.close()
      await db.drop()
    }
  })

  it('send each write at once (TCP_NODELAY, from the postgres.js patch)', async () => {
    // with Nagle's algorithm on, a query written while earlier bytes were unacknowledged waited
    // for the server's delayed ACK: ingest's round trips had a p90 of ~40 ms
    // postgres.js sets it on a new socket before connecting; the embedded database's server end
    // sets it too, but on a socket that is connected already: only the first kind counts
    const calls: { socket: Socket; noDelay: boolean | undefined; beforeConnect: boolean }[] = []
    const original = Socket.prototype.setNoDelay
    Socket.prototype.setNoDelay = function (this: Socket, noDelay?: boolean) {
      calls.push({ socket: this, noDelay, beforeConnect: this.pending })
      return original.call(this, noDelay)
    }
    try {
      const collector = await startTestCollector()
      try {
        await collector.sql`select 1`
        const sockets = calls.filter((c) => c.noDelay === true && c.beforeConnect).map((c) => c.socket)
        // the pool's sockets: open, and they have talked to the database
        expect(sockets.some((s) => !s.destroyed && s.bytesRead > 0)).toBe(true)
      } finally {
        await collector.close()
      }
    } finally {
      Socket.prototype.setNoDelay = original
    }
  })
})

describe('embedded data dir', () => {
  const dirs: string[] = []
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

  it('keeps written data and the generated secrets across a restart', async () => {
    const dataDir = copyTemplateDataDir()
    dirs.push(join(dataDir, '..'))
    const first = await startTestCollector({ dataDir })
    await first.sql`create table if not exists restart_probe (v text)`
    await first.sql`insert into restart_probe values ('kept')`
    const secrets = first.secrets
    await first.close()
    const second = await startTestCollector({ dataDir })
    try {
      const rows = await second.sql<{ v: string }[]>`select v from restart_probe`
      expect(rows.map((r) => r.v)).toEqual(['kept'])
      expect(second.secrets).toEqual(secrets)
      expect(secrets.jwtSecret.length).toBeGreaterThanOrEqual(32)
      expect(new Set([secrets.jwtSecret, secrets.refreshTokenSecret, secrets.apiKeyPepper]).size).toBe(3)
    } finally {
      await second.close()
    }
  })

  it.skipIf(process.platform === 'win32')('makes a data dir that others can read private before opening it (it holds the secrets)', async () => {
    const dataDir = copyTemplateDataDir()
    dirs.push(join(dataDir, '..'))
    chmodSync(dataDir, 0o755)
    const collector = await startTestCollector({ dataDir })
    try {
      expect(statSync(dataDir).mode & 0o777).toBe(0o700)
    } finally {
      await collector.close()
    }
  })

  it('warns when the database was migrated by a newer collector (a rollback of the binary)', async () => {
    const dataDir = copyTemplateDataDir()
    dirs.push(join(dataDir, '..'))
    const first = await startTestCollector({ dataDir })
    await first.sql`insert into schema_migrations (version, name) values (999, 'from_the_future')`
    await first.close()
    const lines: string[] = []
    const logger = createLogger('warn', { write: (line: string) => void lines.push(line) })
    const second = await startTestCollector({ dataDir, logger })
    try {
      const warned = lines.map((l) => JSON.parse(l)).find((l) => l.newer?.includes(999))
      expect(warned).toMatchObject({ level: 40, latest: loadMigrations().at(-1)!.version, msg: expect.stringContaining('migrated by a newer collector') })
    } finally {
      await second.close()
    }
  })

  it('refuses a second collector on the same dir, in this process and in another', async () => {
    const dataDir = copyTemplateDataDir()
    dirs.push(join(dataDir, '..'))
    const first = await startTestCollector({ dataDir })
    try {
      await expect(startTestCollector({ dataDir })).rejects.toThrow(DataDirLockedError)
      const other = spawnCollector({ LLMGUARD_DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1' })
      // its output in the message: under load a failure here must say why the child ended
      expect((await other.exited).code, other.output()).toBe(75)
      expect(other.output()).toContain('the data dir is in use by another collector')
      // the refused attempts did not disturb the running one
      const [row] = await first.sql<{ one: number }[]>`select 1 as one`
      expect(row!.one).toBe(1)
    } finally {
      await first.close()
    }
    const again = await startTestCollector({ dataDir })
    await again.close()
  })

  it('takes over a lock left by a process that no longer exists', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llmguard-lock-'))
    dirs.push(dir)
    const path = join(dir, 'collector.lock')
    writeFileSync(path, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), started: '1' }))
    const lock = await acquireDirLock(path)
    await expect(acquireDirLock(path)).rejects.toThrow(DataDirLockedError)
    lock.release()
    ;(await acquireDirLock(path)).release()
  })

  it('gives a stale lock to exactly one of several starters taking it over at once', async () => {
    for (const foreignHost of [true, false]) {
      const dir = mkdtempSync(join(tmpdir(), 'llmguard-lock-'))
      dirs.push(dir)
      const path = join(dir, 'collector.lock')
      const sock = join(dir, 'pg.sock')
      // a dead owner: another host with a socket file nobody listens on, or a gone pid here
      writeFileSync(path, JSON.stringify(foreignHost ? { pid: 1, host: 'container-before-recreate', started: '1' } : { pid: 2 ** 22 + 4321, host: hostname(), started: '1' }))
      writeFileSync(sock, '')
      const results = await Promise.allSettled(Array.from({ length: 4 }, () => acquireDirLock(path, sock)))
      const won = results.filter((r) => r.status === 'fulfilled')
      expect(won).toHaveLength(1)
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(DataDirLockedError)
      expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid)
      // nothing left aside
      expect(readdirSync(dir).sort()).toEqual(['collector.lock', 'pg.sock'])
      ;(won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireDirLock>>>).value.release()
    }
  })

  it('waits for a lock that is being written (a filesystem without hard links creates it empty first)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llmguard-lock-'))
    dirs.push(dir)
    const path = join(dir, 'collector.lock')
    writeFileSync(path, '') // just created by another starter, not written yet
    setTimeout(() => writeFileSync(path, JSON.stringify({ pid: process.pid, host: hostname(), started: processStartTimeOfSelf() })), 300)
    await expect(acquireDirLock(path)).rejects.toThrow(DataDirLockedError)
    // an empty lock that old was abandoned mid-write: stale
    writeFileSync(path, '')
    const old = new Date(Date.now() - 60_000)
    utimesSync(path, old, old)
    ;(await acquireDirLock(path)).release()
  })

  it('waits a bounded time for an unwritten lock whose modification time is in the future', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llmguard-lock-'))
    dirs.push(dir)
    const path = join(dir, 'collector.lock')
    writeFileSync(path, '')
    const ahead = new Date(Date.now() + 3_600_000) // a clock set back, or another host's clock
    utimesSync(path, ahead, ahead)
    const started = Date.now()
    ;(await acquireDirLock(path)).release()
    expect(Date.now() - started).toBeLessThan(8_000)
  }, 15_000)

  it('takes over past a takeover guard left by a starter that died in the middle of one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llmguard-lock-'))
    dirs.push(dir)
    const path = join(dir, 'collector.lock')
    writeFileSync(path, JSON.stringify({ pid: 2 ** 22 + 777, host: hostname(), started: '1' }))
    mkdirSync(`${path}.takeover`)
    const old = new Date(Date.now() - 60_000)
    utimesSync(`${path}.takeover`, old, old)
    const lock = await acquireDirLock(path)
    expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid)
    expect(readdirSync(dir)).toEqual(['collector.lock'])
    lock.release()
  })

  it('judges a lock from another host (a recreated container) by its database socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llmguard-lock-'))
    dirs.push(dir)
    const path = join(dir, 'collector.lock')
    const sock = join(dir, 'pg.sock')
    const foreign = JSON.stringify({ pid: 1, host: 'container-before-recreate', started: '1' })
    writeFileSync(path, foreign)
    const server = createServer().listen(sock)
    await new Promise((r) => server.once('listening', r))
    try {
      await expect(acquireDirLock(path, sock)).rejects.toThrow(/pid 1 on container-before-recreate/)
    } finally {
      await new Promise((r) => server.close(r))
    }
    // the owner is gone, its socket file may be left behind: nothing answers, so the lock is stale
    writeFileSync(sock, '')
    ;(await acquireDirLock(path, sock)).release()
  })
})

/** This process's start time as the lock records it (Linux /proc; null elsewhere). */
function processStartTimeOfSelf(): string | null {
  try {
    const stat = readFileSync(`/proc/${process.pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null
  } catch {
    return null
  }
}
