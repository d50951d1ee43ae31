// `pnpm bench:start`: time from process start to /readyz 200, on a fresh embedded data dir (PGlite
// initdb included) and on an existing one, beside a baseline measured in the same run: a bare
// hyper-express "hello" server started the same way (Node start-up + module loading).
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureCollectorBuilt, ROOT } from './lib/build.mjs'

const RUNS_FRESH = Number(process.env.BENCH_RUNS_FRESH ?? 3)
const RUNS_EXISTING = Number(process.env.BENCH_RUNS_EXISTING ?? 5)
const TARGET_FIRST_MS = 5000
const TARGET_RESTART_MS = 1000

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })

async function timeToReady(args, env, path) {
  const port = await freePort()
  const started = performance.now()
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  let ms
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${path}`)
      if (res.status === 200) {
        ms = performance.now() - started
        break
      }
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before ready`)
    await new Promise((r) => setTimeout(r, 10))
  }
  child.kill('SIGTERM')
  await exited
  return ms
}

const HELLO = `import HyperExpress from 'hyper-express'
const app = new HyperExpress.Server({ auto_close: false })
app.get('/', (req, res) => res.send('hello'))
await app.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGTERM', () => { app.uws_instance.close(); process.exit(0) })
`

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (ms) => `${ms.toFixed(0)} ms`

const main = ensureCollectorBuilt()
const work = mkdtempSync(join(tmpdir(), 'llmguard-bench-start-'))
try {
  // the baseline script sits in the collector package so it resolves the same hyper-express
  const hello = join(ROOT, 'packages', 'collector', `.bench-hello-${process.pid}.mjs`)
  writeFileSync(hello, HELLO)
  const baseline = []
  try {
    for (let i = 0; i < RUNS_EXISTING; i++) baseline.push(await timeToReady([hello], {}, '/'))
  } finally {
    rmSync(hello, { force: true })
  }
  const fresh = []
  const existing = []
  for (let i = 0; i < RUNS_FRESH; i++) {
    const dir = join(work, `fresh-${i}`)
    fresh.push(await timeToReady([main], { LLMGUARD_DATA_DIR: dir }, '/readyz'))
    if (i === 0) {
      for (let j = 0; j < RUNS_EXISTING; j++) existing.push(await timeToReady([main], { LLMGUARD_DATA_DIR: dir }, '/readyz'))
    }
  }
  const b = median(baseline)
  const rows = [
    ['hyper-express hello (baseline)', b, null],
    ['collector, fresh data dir (initdb)', median(fresh), TARGET_FIRST_MS],
    ['collector, existing data dir (restart)', median(existing), TARGET_RESTART_MS],
  ]
  console.log(`\nstart to ready, median of ${RUNS_FRESH} fresh / ${RUNS_EXISTING} existing runs (Node ${process.versions.node})\n`)
  console.log('what'.padEnd(42), 'median'.padStart(9), '  vs baseline', '  target', '  met')
  for (const [what, ms, target] of rows) {
    console.log(
      what.padEnd(42),
      fmt(ms).padStart(9),
      `${(ms / b).toFixed(1)}×`.padStart(13),
      (target ? `≤ ${target}` : '').padStart(8),
      target ? (ms <= target ? '  yes' : '  NO') : '',
    )
  }
  if (median(fresh) > TARGET_FIRST_MS || median(existing) > TARGET_RESTART_MS) process.exitCode = 1
} finally {
  rmSync(work, { recursive: true, force: true })
}
