// Shared plumbing of the collector benchmarks: a throwaway Postgres database, the built collector
// started in-process on it, a load generator on its own thread, and the numbers' formatting.
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { ensureCollectorBuilt, ROOT } from './build.mjs'

const COLLECTOR_DIR = join(ROOT, 'packages', 'collector')
const fromCollector = createRequire(join(COLLECTOR_DIR, 'package.json'))

/**
 * CPU time (ms, user + system) of every PostgreSQL process on this machine, read from /proc:
 * the difference across a timed window tells what the database spent on it. Linux only (NaN
 * elsewhere); processes that exit inside the window take their time with them, so it is a floor.
 */
export function postgresCpuMs() {
  let ms = 0
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue
      let stat
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      } catch {
        continue // exited meanwhile
      }
      if (stat.includes('(postgres)')) ms += statCpuMs(stat)
    }
  } catch {
    return NaN
  }
  return ms
}

/** utime + stime (ms) of a /proc …/stat line; USER_HZ is 100 on Linux. */
function statCpuMs(stat) {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/** The path of a dependency as the collector resolves it (the scripts have no dependencies of their own). */
export function resolveFromCollector(name) {
  return fromCollector.resolve(name)
}

/** Imports a dependency of the collector package (postgres, undici, hyper-express). */
export async function importFromCollector(name) {
  const mod = await import(pathToFileURL(resolveFromCollector(name)).href)
  return mod.default ?? mod
}

export const BENCH_DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/**
 * Creates a database named `<prefix>_<pid>` next to BENCH_DATABASE_URL's, runs `fn(url)`, and
 * drops the database afterwards whatever happened (also on Ctrl-C).
 */
export async function withThrowawayDatabase(prefix, fn) {
  const postgres = await importFromCollector('postgres')
  const admin = postgres(BENCH_DATABASE_URL, { max: 1, onnotice: () => {} })
  const name = `${prefix}_${process.pid}`
  const url = new URL(BENCH_DATABASE_URL)
  url.pathname = `/${name}`
  await admin.unsafe(`drop database if exists ${name} with (force)`)
  await admin.unsafe(`create database ${name}`)
  let interrupted = false
  const onSignal = () => {
    interrupted = true
    process.stderr.write('\ninterrupted: dropping the benchmark database…\n')
    admin
      .unsafe(`drop database if exists ${name} with (force)`)
      .finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    return await fn(url.href)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    if (!interrupted) {
      // BENCH_KEEP_DATABASE=1 leaves it for a look at plans afterwards (drop it by hand)
      if (process.env.BENCH_KEEP_DATABASE === '1') log(`kept the benchmark database ${name}`)
      else await admin.unsafe(`drop database if exists ${name} with (force)`)
      await admin.end()
    }
  }
}

/** The built collector package (built first if its dist is stale). */
export async function importCollector() {
  ensureCollectorBuilt()
  return import(pathToFileURL(join(COLLECTOR_DIR, 'dist', 'index.js')).href)
}

/** Builds the collector if its dist is stale and starts it in this process on `databaseUrl`. */
export async function startBenchCollector(databaseUrl, env = {}) {
  const { startCollector, loadConfig } = await importCollector()
  return startCollector(
    loadConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', PORT: '0', HOST: '127.0.0.1', ...env }),
  )
}

/**
 * Runs the load generator (load-worker.mjs) on its own thread, so it never shares an event loop
 * with an in-process collector. Resolves with the worker's result; `onStart` (ingest jobs) is
 * called when the records are ready and the timed part begins.
 */
export function runLoad({ onStart, ...job }) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./load-worker.mjs', import.meta.url), {
      workerData: { ...job, undiciPath: resolveFromCollector('undici') },
    })
    worker.on('message', (message) => (message.started ? onStart?.() : resolve(message)))
    worker.once('error', reject)
    worker.once('exit', (code) => code !== 0 && reject(new Error(`load worker exited with ${code}`)))
  })
}

/** CPU time (ms, user + system) of this process's main thread so far, from /proc (NaN elsewhere). */
export function mainThreadCpuMs() {
  try {
    return statCpuMs(readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8'))
  } catch {
    return NaN
  }
}

/** Nearest-rank percentile of a list of numbers. */
export function percentile(values, p) {
  if (!values.length) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]
}

export const median = (values) => percentile(values, 0.5)

export const int = (n) => Math.round(n).toLocaleString('en-US')

export const ms = (n) => `${n < 10 ? n.toFixed(1) : n.toFixed(0)} ms`

/** Prints rows as an aligned text table; the first row is the header. */
export function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)))
  for (const [n, row] of rows.entries()) {
    console.log(row.map((cell, i) => (i === 0 ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i]))).join('  '))
    if (n === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  }
}

export const log = (line) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`)

const HELLO = (hyperExpress) => `import HyperExpress from ${JSON.stringify(pathToFileURL(hyperExpress).href)}
const app = new HyperExpress.Server({ auto_close: false })
app.get('/', (req, res) => res.send('hello'))
await app.listen(Number(process.env.PORT), '127.0.0.1')
process.send?.('ready')
process.on('SIGTERM', () => { app.uws_instance.close(); process.exit(0) })
`

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })

/** A bare hyper-express "hello" server in its own process: the baseline of the GET-rate benchmarks. */
export async function startHello() {
  const dir = mkdtempSync(join(tmpdir(), 'llmguard-bench-hello-'))
  const file = join(dir, 'hello.mjs')
  writeFileSync(file, HELLO(resolveFromCollector('hyper-express')))
  const port = await freePort()
  const child = spawn(process.execPath, [file], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  await new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (code) => reject(new Error(`hello server exited with ${code}`)))
  })
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

