import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startFakeCollector, TEST_KEY, type FakeCollector } from './fakes/collector-server.js'
import { startFakeOpenAI, type FakeOpenAI } from './fakes/openai-server.js'
import { makeGuard, tempDir, until } from './helpers.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const child = fileURLToPath(new URL('./fixtures/child.ts', import.meta.url))

let fake: FakeOpenAI
let collector: FakeCollector
let tmp: ReturnType<typeof tempDir>
const children: ChildProcess[] = []

beforeAll(async () => {
  fake = await startFakeOpenAI()
  fake.keepRequests = false
  collector = await startFakeCollector()
})
afterAll(async () => {
  await fake.close()
  await collector.close()
})
beforeEach(() => {
  tmp = tempDir()
  collector.stored.clear()
  collector.arrivals.clear()
})
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  tmp.cleanup()
})

interface Run {
  proc: ChildProcess
  lines: string[]
  exited: Promise<number | null>
}

function run(env: Record<string, string>): Run {
  // node itself with tsx's loader, not the tsx CLI: the CLI runs the script in a grandchild
  // that a SIGKILL to the CLI would leave running
  const proc = spawn(process.execPath, ['--import', 'tsx', child], { cwd: root, env: { ...process.env, OPENAI_BASE: fake.baseURL, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(proc)
  const lines: string[] = []
  let buf = ''
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString()
    const parts = buf.split('\n')
    buf = parts.pop()!
    lines.push(...parts)
  })
  let err = ''
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<number | null>((resolve) =>
    proc.on('exit', (code) => {
      if (code) console.error(err)
      resolve(code)
    }),
  )
  return { proc, lines, exited }
}

const okLines = (r: Run) => r.lines.filter((l) => l.startsWith('ok ')).map((l) => l.split(' '))

describe('several processes', () => {
  it.each(['immediate', 'buffered'] as const)('a process killed with SIGKILL loses nothing it wrote (%s)', async (durability) => {
    const outbox = join(tmp.dir, 'outbox.sqlite')
    const r = run({ OUTBOX: outbox, CALLS: '100000', TAG: durability, DURABILITY: durability })
    await until(() => okLines(r).length >= 150, 20_000, 'child calls')
    await new Promise((res) => setTimeout(res, 400))
    r.proc.kill('SIGKILL')
    const killedAt = Date.now()
    await r.exited
    const returned = okLines(r)
    // immediate: every call that returned; buffered: every call older than the 100 ms window
    // (plus slack for a loaded 2-core machine; the window itself is measured by bench:sdk)
    const mustHave = durability === 'immediate' ? returned : returned.filter(([, , at]) => Number(at) < killedAt - 250)
    expect(mustHave.length).toBeGreaterThan(20)
    const { guard } = makeGuard(collector, tmp.dir, { outbox, policy: false })
    await guard.flush()
    await guard.shutdown()
    const prompts = new Set([...collector.stored.values()].map((rec) => String(rec.prompt).replace('user: ', '')))
    for (const [, prompt] of mustHave) expect(prompts.has(prompt!)).toBe(true)
    expect([...collector.arrivals.values()].every((n) => n === 1)).toBe(true)
  })

  it('rows a killed process was sending are picked up at once by the next one (no lease wait)', async () => {
    const outbox = join(tmp.dir, 'outbox.sqlite')
    // answers arrive late: at the kill, the child holds leases on rows it is sending
    collector.batchDelayMs = 1500
    const r = run({ OUTBOX: outbox, CALLS: '100000', TAG: 'ship', KEY: TEST_KEY, COLLECTOR: collector.url })
    await until(() => okLines(r).length >= 150, 20_000, 'child calls')
    await new Promise((res) => setTimeout(res, 400))
    r.proc.kill('SIGKILL')
    const killedAt = Date.now()
    await r.exited
    collector.batchDelayMs = 0
    const mustHave = okLines(r).filter(([, , at]) => Number(at) < killedAt - 250)
    expect(mustHave.length).toBeGreaterThan(20)
    const { guard } = makeGuard(collector, tmp.dir, { outbox, policy: false })
    const t = Date.now()
    await guard.flush({ timeoutMs: 5000 })
    expect(Date.now() - t).toBeLessThan(5000)
    expect(guard.stats().queued).toBe(0)
    await guard.shutdown()
    const prompts = new Set([...collector.stored.values()].map((rec) => String(rec.prompt).replace('user: ', '')))
    for (const [, prompt] of mustHave) expect(prompts.has(prompt!)).toBe(true)
  })

  /** Runs a one-shot fixture script against the fakes, with an outbox file of its own. */
  function runFixture(script: string, outbox: string): ChildProcess {
    const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(`./fixtures/${script}`, import.meta.url))], {
      cwd: root,
      env: { ...process.env, OPENAI_BASE: fake.baseURL, KEY: TEST_KEY, COLLECTOR: collector.url, OUTBOX: join(tmp.dir, outbox) },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    children.push(proc)
    return proc
  }

  it('a process that never calls shutdown still exits by itself (timers and sockets unref\'d)', async () => {
    const proc = runFixture('no-shutdown.ts', 'ns.sqlite')
    let out = ''
    let doneAt = 0
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      doneAt ||= Date.now()
    })
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve))
    expect(code).toBe(0)
    expect(out).toContain('done 1')
    // the keep-alive connections to the collector (10 s) and OpenAI (5 s) did not hold it open
    expect(Date.now() - doneAt).toBeLessThan(1500)
  })

  it.each(['0', '1'])('a collector that never answers does not hold the process open (shutdown() called: %s)', async (shutdown) => {
    // accepts connections and never answers: the shipper's request waits for its 15 s timeout
    const silent = createServer((socket) => socket.on('error', () => undefined))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    try {
      const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/hanging-collector.ts', import.meta.url))], {
        cwd: root,
        env: { ...process.env, KEY: TEST_KEY, COLLECTOR: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, OUTBOX: join(tmp.dir, 'hang.sqlite'), SHUTDOWN: shutdown },
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      children.push(proc)
      let out = ''
      let doneAt = 0
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString()
        doneAt ||= Date.now()
      })
      expect(await new Promise<number | null>((resolve) => proc.on('exit', resolve))).toBe(0)
      // the record stays in the outbox for the next start
      expect(out).toContain('done 1')
      expect(Date.now() - doneAt).toBeLessThan(3000)
    } finally {
      silent.close()
    }
  })

  it("importing the SDK leaves the app's fetch on its own dispatcher (the shipper's undici is private)", async () => {
    const proc = runFixture('global-dispatcher.ts', 'gd.sqlite')
    let out = ''
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    expect(await new Promise<number | null>((resolve) => proc.on('exit', resolve))).toBe(0)
    // nothing installed at import; the app's first fetch installed Node's own; the record shipped
    expect(JSON.parse(out)).toEqual({ unsetAfterImport: true, set: true, sdkAgent: false, sent: 1 })
  })

  it('two processes on one outbox: no loss, nothing shipped twice, no event-loop stall over 100 ms', async () => {
    const outbox = join(tmp.dir, 'shared.sqlite')
    const env = { OUTBOX: outbox, CALLS: '400', KEY: TEST_KEY, COLLECTOR: collector.url }
    const a = run({ ...env, TAG: 'a' })
    const b = run({ ...env, TAG: 'b' })
    expect(await a.exited).toBe(0)
    expect(await b.exited).toBe(0)
    // (a batch the previous test's killed child had in flight may land here too: count by prompt)
    const expected = [...Array(400).keys()].flatMap((i) => [`user: a-${i}`, `user: b-${i}`])
    const stored = () => new Set([...collector.stored.values()].map((r) => String(r.prompt)))
    await until(() => expected.every((p) => stored().has(p)), 10_000, 'all 800 records')
    expect([...collector.arrivals.values()].every((n) => n === 1)).toBe(true)
    for (const r of [a, b]) {
      const summary = JSON.parse(r.lines.find((l) => l.startsWith('summary '))!.slice(8)) as {
        maxStallMs: number
        p99StallMs: number
        stats: { maxOutboxOpMs: number }
      }
      // what the SDK itself held the event loop for: its longest synchronous SQLite operation
      // (lock waits included). The loop's own maximum also counts CPU starvation from the
      // other test files on a 2-core machine (~15 ms alone, >100 ms under the full suite), so
      // it is held to the bound only at p99.
      expect(summary.stats.maxOutboxOpMs).toBeGreaterThan(0)
      expect(summary.stats.maxOutboxOpMs).toBeLessThan(100)
      expect(summary.p99StallMs).toBeLessThan(100)
    }
  })
})
