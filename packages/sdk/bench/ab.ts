/**
 * `tsx packages/sdk/bench/ab.ts`: two SDK trees against each other on one machine state, the way
 * `pnpm bench:sdk` measures (bench/worker.ts, one process per run, CPU µs per call), with bare,
 * A and B runs interleaved round by round (the order flips every round). For telling whether a
 * change helped when the machine's speed drifts between separate bench runs.
 *
 *   git archive <commit> src | tar -x -C packages/sdk/.ab-a        # e.g. the previous round
 *   A_SRC=../.ab-a/src/index.js ROUNDS=6 npx tsx packages/sdk/bench/ab.ts
 *
 * env A_SRC, B_SRC (SDK entries relative to bench/; default B: ../src/index.js), ROUNDS (6), CALLS (2000).
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startFakeCollector, TEST_KEY } from '../test/fakes/collector-server.js'
import { startFakeOpenAI } from '../test/fakes/openai-server.js'

if (!process.env.A_SRC) throw new Error('A_SRC: the SDK entry to compare against, e.g. ../.ab-a/src/index.js')
const fake = await startFakeOpenAI()
fake.keepRequests = false
const collector = await startFakeCollector({ trust: true })
const variants: Record<string, [string, Record<string, string>]> = {
  bare: ['bare', {}],
  A: ['llmguard', { LG_SRC: process.env.A_SRC }],
  B: ['llmguard', { LG_SRC: process.env.B_SRC ?? '../src/index.js' }],
}
const names = ['bare', 'A', 'B']
const cpu: Record<string, number[]> = { bare: [], A: [], B: [] }
const run = (mode: string, env: Record<string, string>) =>
  new Promise<{ cpuMs: number; samples: number[] }>((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./worker.ts', import.meta.url)), mode], {
      env: { ...process.env, OPENAI_BASE: fake.baseURL, COLLECTOR: collector.url, KEY: TEST_KEY, CALLS: process.env.CALLS ?? '2000', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!)) : reject(new Error(`${mode} exited ${code}`))))
  })
for (let r = 0; r < Number(process.env.ROUNDS ?? 6); r++) {
  for (const n of r % 2 ? [...names].reverse() : names) {
    const [mode, env] = variants[n]!
    const res = await run(mode, env)
    cpu[n]!.push((res.cpuMs / res.samples.length) * 1000)
  }
  process.stderr.write(`round ${r + 1}: ${names.map((n) => `${n} ${cpu[n]!.at(-1)!.toFixed(0)}`).join(', ')} µs CPU/call\n`)
}
await fake.close()
await collector.close()
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
for (const n of ['A', 'B']) {
  const d = cpu[n]!.map((x, i) => x - cpu.bare[i]!)
  process.stdout.write(`${n}: added CPU µs/call, mean ${(mean(cpu[n]!) - mean(cpu.bare)).toFixed(1)}; per round ${d.map((x) => x.toFixed(0)).join(' ')}\n`)
}
