import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { Agent, request } from 'undici'
import postgres from 'postgres'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import { Validator } from '@seriousme/openapi-schema-validator'
import { describe, expect, it } from 'vitest'
import { copyTemplateDataDir, createTestDatabase, onRealPostgres, startTestCollector } from './helpers/collector.js'
import { spawnCollector } from './helpers/process.js'
import { TcpProxy } from './helpers/tcp-proxy.js'

async function waitFor<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (ok(value) || Date.now() > deadline) return value
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** A database behind a proxy the test can cut: real Postgres, or PGlite served on a TCP port. */
async function databaseBehindProxy() {
  if (onRealPostgres()) {
    const db = await createTestDatabase()
    const url = new URL(db.url)
    const proxy = new TcpProxy({ host: url.hostname, port: Number(url.port || 5432) })
    await proxy.start()
    url.host = `127.0.0.1:${proxy.port}`
    return { proxy, url: url.toString(), close: db.drop }
  }
  const dataDir = copyTemplateDataDir()
  const pg = await PGlite.create(join(dataDir, 'pg'))
  const server = new PGLiteSocketServer({ db: pg, host: '127.0.0.1', port: 0 })
  await server.start()
  const proxy = new TcpProxy({ host: '127.0.0.1', port: (server as unknown as { port: number }).port })
  await proxy.start()
  return {
    proxy,
    url: `postgres://postgres@127.0.0.1:${proxy.port}/postgres`,
    async close() {
      await server.stop()
      await pg.close()
      rmSync(join(dataDir, '..'), { recursive: true, force: true })
    },
  }
}

describe('health endpoints', () => {
  it('/healthz and /readyz answer 200 on a migrated database', async () => {
    const collector = await startTestCollector()
    try {
      expect(await collector.client.get('/healthz')).toEqual({ status: 'ok' })
      const ready = await collector.client.get<{ status: string; database: string; migrations: string }>('/readyz')
      expect(ready).toMatchObject({ status: 'ready', database: 'up', migrations: 'applied' })
    } finally {
      await collector.close()
    }
  })

  it('/readyz answers 503 while the database is unreachable and 200 once it is back', async () => {
    const db = await databaseBehindProxy()
    const collector = await startTestCollector({ databaseUrl: db.url, env: { DATABASE_POOL_SIZE: '1' } })
    const readyz = async () => {
      const res = await request(`${collector.url}/readyz`)
      return { status: res.statusCode, body: (await res.body.json()) as { database: string; migrations: string } }
    }
    try {
      expect((await readyz()).status).toBe(200)
      await db.proxy.cut()
      const down = await waitFor(readyz, (r) => r.status === 503)
      expect(down.status).toBe(503)
      expect(down.body.database).toBe('down')
      // not 'pending': that would send an operator looking at migrations
      expect(down.body.migrations).toBe('unknown')
      expect((await request(`${collector.url}/healthz`)).statusCode).toBe(200)
      await db.proxy.start()
      const up = await waitFor(readyz, (r) => r.status === 200)
      expect(up.status).toBe(200)
    } finally {
      await collector.close()
      await db.close()
    }
  })

  it('/openapi.json is a valid OpenAPI 3.1 document listing the routes', async () => {
    const collector = await startTestCollector()
    try {
      const doc = await collector.client.get<{
        openapi: string
        paths: Record<string, Record<string, { requestBody?: { required: boolean }; parameters?: { name: string; in: string; schema: Record<string, unknown> }[] }>>
        components: { schemas: Record<string, { properties?: Record<string, unknown> }> }
      }>('/openapi.json')
      // a body is required where the route needs one, optional where it can do without
      expect(doc.paths['/v1/projects']!.post!.requestBody!.required).toBe(true)
      expect(doc.paths['/v1/billing/portal']!.post!.requestBody!.required).toBe(false)
      expect(doc.paths['/v1/auth/refresh']!.post!.requestBody!.required).toBe(false)
      // query integers show their type, bounds and defaults
      const param = (path: string, name: string) => doc.paths[path]!.get!.parameters!.find((p) => p.in === 'query' && p.name === name)!.schema
      expect(param('/v1/projects/{id}/metrics', 'days')).toMatchObject({ type: 'integer', minimum: 1, maximum: 365, default: 30 })
      expect(param('/v1/projects/{id}/logs', 'limit')).toMatchObject({ type: 'integer', minimum: 1, maximum: 100, default: 50 })
      expect(param('/v1/projects/{id}/logs', 'minRiskScore')).toMatchObject({ type: 'integer', minimum: 0, maximum: 100 })
      // the batch's records are described field by field, as the single record is (the route
      // validates each record on its own, against the same schema)
      type Json = Record<string, unknown>
      const bodyOf = (path: string) => (doc.paths[path]!.post!.requestBody as unknown as { content: Record<string, { schema: Json }> }).content['application/json']!.schema
      const resolve = (s: Json): Json => (typeof s.$ref === 'string' ? resolve(doc.components.schemas[s.$ref.replace('#/components/schemas/', '')] as Json) : s)
      const records = (bodyOf('/v1/llm/requests/batch').properties as Record<string, Json>).records!
      expect(records).toMatchObject({ type: 'array', minItems: 1, maxItems: 1000 })
      const record = resolve(records.items as Json)
      expect(record).toEqual(resolve(bodyOf('/v1/llm/requests')))
      expect(record.required).toEqual(expect.arrayContaining(['prompt', 'model', 'latency']))
      expect(Object.keys(record.properties as Json)).toEqual(expect.arrayContaining(['id', 'prompt', 'response', 'model', 'latency', 'tokens', 'status', 'timestamp', 'metadata']))
      expect((record.properties as Record<string, Json>).latency).toMatchObject({ type: 'integer', minimum: 0 })
      // every component is used, and every reference names one (walked from the paths)
      const reached = new Set<string>()
      const walk = (node: unknown) => {
        for (const [, name] of JSON.stringify(node).matchAll(/"#\/components\/schemas\/([^"]+)"/g)) {
          if (reached.has(name!)) continue
          reached.add(name!)
          expect(doc.components.schemas, `$ref ${name}`).toHaveProperty([name!])
          walk(doc.components.schemas[name!])
        }
      }
      walk(doc.paths)
      expect(Object.keys(doc.components.schemas).filter((name) => !reached.has(name))).toEqual([])
      // a request body refers to input shapes, a response to output shapes: a reset_settings rule
      // may omit its parameters in the settings PATCH, and always has them in the answer
      const settings = doc.paths['/v1/projects/{id}/settings']!.patch! as unknown as { requestBody: { content: Record<string, { schema: Json }> }; responses: Record<string, { content: Record<string, { schema: Json }> }> }
      const ruleOf = (settingsSchema: Json) => ((resolve(settingsSchema).properties as Record<string, Json>).autoRemediation!.additionalProperties as Json).$ref
      expect(ruleOf(settings.requestBody.content['application/json']!.schema)).toBe('#/components/schemas/AutoRemediationRuleInput')
      expect(ruleOf(settings.responses['200']!.content['application/json']!.schema)).toBe('#/components/schemas/AutoRemediationRule')
      const resetRequired = (name: string) =>
        ((doc.components.schemas[name] as Json).oneOf as Json[]).find((branch) => (branch.properties as Record<string, Json>).action!.const === 'reset_settings')!.required
      expect(resetRequired('AutoRemediationRuleInput')).toEqual(['action', 'durationMinutes'])
      expect(resetRequired('AutoRemediationRule')).toEqual(['action', 'parameters', 'durationMinutes'])
      // the envelope is defined in full, not as a reference to itself
      expect(Object.keys(doc.components.schemas.ErrorEnvelope!.properties!)).toEqual(['error'])
      expect(doc.openapi).toBe('3.1.0')
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/healthz', '/readyz', '/openapi.json']))
      const result = await new Validator().validate(doc as never)
      expect(result.errors ?? []).toEqual([])
      expect(result.valid).toBe(true)
    } finally {
      await collector.close()
    }
  })
})

describe('the listening port', () => {
  // needs root to run the check as another user (CI runs as root)
  it.runIf(process.getuid?.() === 0)('says a port below 1024 needs privileges, not that it is in use', async () => {
    const { spawnSync } = await import('node:child_process')
    const run = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/listen-as-nobody.ts', import.meta.url))], { encoding: 'utf8' })
    expect(run.stdout).toBe('cannot listen on 127.0.0.1:80: permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE; use PORT=3000 behind a proxy)')
  })

  it('describes a start-up failure the embedded database throws as a bare errno object', async () => {
    const { describeFailure } = await import('../src/crash.js')
    expect(describeFailure({ errno: 51 })).toBe("the embedded database's files failed: no space left on the device (ENOSPC) (LLMGUARD_DATA_DIR)")
    expect(describeFailure({ errno: 999 })).toContain('errno 999')
    expect(describeFailure(new Error('plain'))).toBe('plain')
    expect(describeFailure('text')).toBe('text')
  })
  it('names an IPv6 address in brackets in its URL, and that URL answers', async () => {
    const v6 = await startTestCollector({ env: { PORT: '0', HOST: '::1' } })
    try {
      expect(v6.url).toBe(`http://[::1]:${v6.port}`)
      const res = await request(`${v6.url}/healthz`)
      expect(res.statusCode).toBe(200)
      await res.body.text()
    } finally {
      await v6.close()
    }
  })

  it('a second collector on a port in use fails before it opens, let alone migrates, its database', async () => {
    const probe = await startTestCollector({ env: { PORT: '0' } })
    const port = probe.port
    await probe.stop()
    const first = await startTestCollector({ env: { PORT: String(port) } })
    const emptyDir = join(mkdtempSync(join(tmpdir(), 'llmguard-second-')), 'data')
    const db = onRealPostgres() ? await createTestDatabase() : undefined
    try {
      await expect(startTestCollector({ env: { PORT: String(port) }, ...(db ? { databaseUrl: db.url } : { dataDir: emptyDir }) })).rejects.toThrow(
        `cannot listen on 127.0.0.1:${port}: the port is in use (another collector?)`,
      )
      if (db) {
        const postgres = (await import('postgres')).default
        const sql = postgres(db.url, { max: 1, onnotice: () => undefined })
        const [row] = await sql<{ n: number }[]>`select count(*)::int as n from information_schema.tables where table_schema = 'public'`
        await sql.end()
        expect(row!.n).toBe(0)
      } else {
        expect(existsSync(join(emptyDir, 'pg'))).toBe(false)
      }
      expect((await first.client.get<{ status: string }>('/readyz')).status).toBe('ready')
    } finally {
      await first.stop()
      await db?.drop()
      rmSync(join(emptyDir, '..'), { recursive: true, force: true })
    }
  })
})

describe('an address that is not this machine\'s', () => {
  it('with PORT=0 too, fails before it opens its database', async () => {
    const emptyDir = join(mkdtempSync(join(tmpdir(), 'llmguard-host-')), 'data')
    try {
      // 192.0.2.1 is TEST-NET-1: never a local address
      await expect(startTestCollector({ env: { PORT: '0', HOST: '192.0.2.1' }, dataDir: emptyDir })).rejects.toThrow('cannot listen on 192.0.2.1:0')
      expect(existsSync(join(emptyDir, 'pg'))).toBe(false)
    } finally {
      rmSync(join(emptyDir, '..'), { recursive: true, force: true })
    }
  })
})

describe('graceful stop', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('%s exits within a few seconds with an idle keep-alive client connected', async (signal) => {
    const dataDir = copyTemplateDataDir()
    const proc = spawnCollector({ LLMGUARD_DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1' })
    const agent = new Agent({ keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 })
    try {
      const url = await proc.ready()
      const res = await request(`${url}/healthz`, { dispatcher: agent })
      await res.body.text()
      expect(res.headers.connection ?? 'keep-alive').not.toBe('close')
      const sent = Date.now()
      proc.child.kill(signal)
      const { code } = await proc.exited
      expect(code).toBe(0)
      expect(Date.now() - sent).toBeLessThan(4_000)
      expect(proc.output()).toContain('collector stopped')
    } finally {
      proc.child.kill('SIGKILL')
      await agent.close()
      rmSync(join(dataDir, '..'), { recursive: true, force: true })
    }
  })

  it.runIf(onRealPostgres())('a SIGTERM while start-up waits for another collector\'s migrations exits at once, saying what it waited for', async () => {
    const db = await createTestDatabase()
    const holder = postgres(db.url, { max: 1, onnotice: () => undefined })
    const reserved = await holder.reserve()
    await reserved`begin`
    await reserved`select pg_advisory_xact_lock(7400001)` // the migration lock (db/migrate.ts)
    const proc = spawnCollector({ DATABASE_URL: db.url, PORT: '0', HOST: '127.0.0.1' })
    try {
      // bounded, so the finally below stops the child even when the message never comes
      for (let i = 0; i < 750 && !proc.output().includes('another collector is migrating this database') && proc.child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 20))
      expect(proc.output()).toContain('another collector is migrating this database')
      const sent = Date.now()
      proc.child.kill('SIGTERM')
      const { code } = await proc.exited
      expect(code).toBe(0)
      expect(Date.now() - sent).toBeLessThan(3_000)
      expect(proc.output()).toContain('SIGTERM during start-up: exiting')
      expect(proc.output()).not.toContain('collector ready')
    } finally {
      proc.child.kill('SIGKILL')
      await reserved`rollback`.catch(() => undefined)
      reserved.release()
      await holder.end({ timeout: 0 })
      await db.drop()
    }
  })

  it('a SIGTERM during start-up (initdb) still closes the database and releases the lock', async () => {
    const root = mkdtempSync(join(tmpdir(), 'llmguard-early-signal-'))
    const dataDir = join(root, 'data')
    const proc = spawnCollector({ LLMGUARD_DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1' })
    try {
      // wait until the data dir exists (the lock is taken) but the database is still being created
      while (!existsSync(join(dataDir, 'collector.lock')) && proc.child.exitCode === null) await new Promise((r) => setTimeout(r, 20))
      proc.child.kill('SIGTERM')
      const { code } = await proc.exited
      expect(code).toBe(0)
      expect(proc.output()).toContain('collector stopped')
      expect(existsSync(join(dataDir, 'collector.lock'))).toBe(false)
    } finally {
      proc.child.kill('SIGKILL')
      rmSync(root, { recursive: true, force: true })
    }
  })
})

describe('failures nobody caught', () => {
  const FAULT = fileURLToPath(new URL('./fixtures/fault-on-signal.mjs', import.meta.url))

  it('a stray rejected promise is logged as an error and the collector keeps serving', async () => {
    const dataDir = copyTemplateDataDir()
    const proc = spawnCollector({ LLMGUARD_DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LLMGUARD_TEST_FAULT: 'reject' }, [FAULT])
    try {
      const url = await proc.ready()
      proc.child.kill('SIGUSR2')
      for (let i = 0; i < 250 && !proc.output().includes('stray rejection') && proc.child.exitCode === null; i++) await sleep(20)
      const line = proc.output().split('\n').find((l) => l.includes('stray rejection'))
      // one structured line through the logger (its redaction applies), not Node's own print-out
      const logged = JSON.parse(line ?? '{}') as { level?: number; msg?: string; err?: { message?: string } }
      expect(logged.level).toBe(50)
      expect(logged.msg).toContain('unhandled promise rejection')
      expect(logged.err?.message).toBe('stray rejection')
      const res = await request(`${url}/readyz`)
      await res.body.text()
      expect(res.statusCode).toBe(200)
      expect(proc.child.exitCode).toBe(null)
    } finally {
      proc.child.kill('SIGKILL')
      await proc.exited
      rmSync(join(dataDir, '..'), { recursive: true, force: true })
    }
  })

  it('an uncaught exception is logged as fatal, the database closes, the lock is released and the exit code is 1', async () => {
    const dataDir = copyTemplateDataDir()
    const proc = spawnCollector({ LLMGUARD_DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LLMGUARD_TEST_FAULT: 'throw' }, [FAULT])
    try {
      await proc.ready()
      expect(existsSync(join(dataDir, 'collector.lock'))).toBe(true)
      proc.child.kill('SIGUSR2')
      const { code } = await proc.exited
      expect(code).toBe(1)
      const line = proc.output().split('\n').find((l) => l.includes('stray exception'))
      const logged = JSON.parse(line ?? '{}') as { level?: number; msg?: string }
      expect(logged.level).toBe(60)
      expect(logged.msg).toContain('uncaught exception')
      expect(proc.output()).toContain('collector stopped')
      expect(existsSync(join(dataDir, 'collector.lock'))).toBe(false)
    } finally {
      proc.child.kill('SIGKILL')
      rmSync(join(dataDir, '..'), { recursive: true, force: true })
    }
  })
})

describe('the embedded database socket', () => {
  it('in a data dir too deep for a socket address: a private temp directory, never a loopback port, removed on stop', async () => {
    const dataDir = copyTemplateDataDir()
    const deep = join(dataDir, '..', 'x'.repeat(120), 'data')
    cpSync(dataDir, deep, { recursive: true })
    const collector = await startTestCollector({ dataDir: deep })
    let closed = false
    try {
      const where = collector.sql.options.path as string | undefined
      expect(where).toBeDefined()
      expect(where!.length).toBeLessThanOrEqual(100)
      expect(where!.startsWith(tmpdir())).toBe(true)
      expect(statSync(dirname(where!)).mode & 0o777).toBe(0o700)
      expect((await collector.client.get<{ status: string }>('/readyz')).status).toBe('ready')
      // a second collector on the data dir is refused, and leaves the owner's socket alone
      await expect(startTestCollector({ dataDir: deep })).rejects.toThrow(/in use by another collector/)
      expect(existsSync(where!)).toBe(true)
      expect((await collector.client.get<{ status: string }>('/readyz')).status).toBe('ready')
      await collector.close()
      closed = true
      expect(existsSync(dirname(where!))).toBe(false)
      // the next start (after a crash too, when the dir is left behind) uses the same place
      mkdirSync(dirname(where!), { mode: 0o700 })
      const again = await startTestCollector({ dataDir: deep })
      expect(again.sql.options.path).toBe(where)
      await again.close()
    } finally {
      if (!closed) await collector.close()
      rmSync(join(dataDir, '..'), { recursive: true, force: true })
    }
  })
})
