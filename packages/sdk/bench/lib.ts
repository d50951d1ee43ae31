/** What bench:sdk and bench/ab.ts share: running a bench script in a child process, and the round statistics. */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../../', import.meta.url))

/** Runs a script of this folder under tsx in its own process; resolves with the JSON of its last stdout line. */
export function runChild(script: string, args: string[], env: Record<string, string>): Promise<any> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(script, import.meta.url)), ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!)) : reject(new Error(`${script} ${args.join(' ')} exited ${code}`))))
  })
}

/** Mean and standard error of the mean (NaN for a single value). */
export function meanSe(xs: readonly number[]): { mean: number; se: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length
  const se = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1) / xs.length)
  return { mean, se }
}

interface Worker {
  send(msg: unknown): void
  next(): Promise<any>
  exited: Promise<void>
}

function startWorker(script: string, args: string[], env: Record<string, string>): Worker {
  const p = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(script, import.meta.url)), ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const inbox: any[] = []
  const waiting: { resolve: (m: any) => void; reject: (e: Error) => void }[] = []
  let failure: Error | undefined
  p.on('message', (m) => {
    const w = waiting.shift()
    if (w) w.resolve(m)
    else inbox.push(m)
  })
  // any exit ends the conversation: a worker that exits, even with 0, before its reply (say, one
  // that did not take BLOCKS and ran on its own) must fail the round, not leave it waiting
  const exited = new Promise<void>((resolve) =>
    p.on('exit', (code, signal) => {
      failure = new Error(`${script} ${args.join(' ')} exited ${signal ?? code} before replying`)
      for (const w of waiting.splice(0)) w.reject(failure)
      resolve()
    }),
  )
  return {
    send: (msg) => p.send(msg as any),
    next: () => (inbox.length ? Promise.resolve(inbox.shift()) : failure ? Promise.reject(failure) : new Promise((resolve, reject) => waiting.push({ resolve, reject }))),
    exited,
  }
}

/** BLOCK from the environment: 0 (one process after another, the default) or the calls a turn for runInterleaved. */
export function blockFromEnv(): number {
  const block = Number(process.env.BLOCK ?? 0)
  if (!Number.isInteger(block) || block < 0) throw new Error(`BLOCK: 0 (one process after another) or a whole number of calls a turn, not ${process.env.BLOCK}`)
  return block
}

/**
 * One round of worker processes measured side by side: all are started, then their calls run in
 * blocks of `block`, one process's block after another's, the order rotating every block: the
 * warm-up (untimed, `warmup` calls each, then each one's flush), then the timed calls. A change in
 * the machine's speed over the round so reaches every process alike, instead of whichever ran at
 * the time, and none warms up while another is timed. Then each flushes and reports, in the
 * order given (the callers flip it every round). Resolves with each run's result, in that order.
 *
 * CPU is each process's own, background work between its turns included. Wall-clock figures are
 * not comparable with solo runs: a process's writes and shipping mostly run during the other
 * processes' turns, outside its own timed calls.
 */
export async function runInterleaved(script: string, runs: { args: string[]; env: Record<string, string> }[], o: { warmup: number; calls: number; block: number }): Promise<any[]> {
  if (!Number.isInteger(o.block) || o.block < 1) throw new Error(`BLOCK: a whole number of calls ≥ 1, not ${o.block}`)
  const workers = runs.map((r) => startWorker(script, r.args, { ...r.env, BLOCKS: String(o.block) }))
  for (const w of workers) await w.next()
  const inTurns = async (total: number, msg: (k: number) => object) => {
    for (let done = 0, b = 0; done < total; done += o.block, b++) {
      const k = Math.min(o.block, total - done)
      for (let i = 0; i < workers.length; i++) {
        const w = workers[(i + b) % workers.length]!
        w.send(msg(k))
        await w.next()
      }
    }
  }
  await inTurns(o.warmup, (k) => ({ warm: k }))
  for (const w of workers) {
    w.send({ warmed: true })
    await w.next()
  }
  await inTurns(o.calls, (k) => ({ run: k }))
  const results: any[] = []
  for (const w of workers) {
    w.send({ finish: true })
    results.push(JSON.parse((await w.next()).result))
    await w.exited
  }
  return results
}
