/**
 * `tsx packages/sdk/bench/ab.ts`: SDK trees or settings against each other on one machine state,
 * the way `pnpm bench:sdk` measures (bench/worker.ts, one process per run, CPU µs per call), with
 * every variant's runs interleaved round by round (the order flips every round). For telling
 * whether a change helped when the machine's speed drifts between separate bench runs.
 *
 *   git archive <commit> src | tar -x -C packages/sdk/.ab-a        # e.g. the previous round
 *   A_SRC=../.ab-a/src/index.js ROUNDS=20 npx tsx packages/sdk/bench/ab.ts
 *
 * or any set of variants, the first one the baseline: a name → [worker mode, extra env], e.g.
 *
 *   VARIANTS='{"bare":["bare",{}],"sdk":["llmguard",{}],"memory":["llmguard",{"LG_VARIANT":"memory"}]}'
 *
 * env A_SRC, B_SRC (SDK entries relative to bench/; default B: ../src/index.js, so both run as
 * sources through tsx; a variant without LG_SRC loads the built ../dist/index.js, build it first), VARIANTS,
 * ROUNDS (6), CALLS (2000), WARMUP (300), BLOCK (0). At this machine's noise (one round's
 * difference moves by ±50–100 µs) 20 rounds or more are needed to see a 20 µs change, one process
 * after another. BLOCK=100 runs a round's processes side by side, taking turns every 100 calls
 * (bench/lib.ts runInterleaved): standard errors of 6–14 µs in 12–16 rounds on 2026-12-07, so a
 * 20 µs change shows in one run. Every variant then runs a share of the time only, which costs
 * the SDK's timer-driven writes and batches more than running alone (see bench:sdk's BLOCK): it
 * compares variants with each other, not the SDK's cost on its own.
 */
import { startFakeCollector, TEST_KEY } from '../test/fakes/collector-server.js'
import { startFakeOpenAI } from '../test/fakes/openai-server.js'
import { blockFromEnv, meanSe, runChild, runInterleaved } from './lib.js'

type Variants = Record<string, [string, Record<string, string>]>
let variants: Variants
if (process.env.VARIANTS) variants = JSON.parse(process.env.VARIANTS) as Variants
else if (process.env.A_SRC) {
  variants = {
    bare: ['bare', {}],
    A: ['llmguard', { LG_SRC: process.env.A_SRC }],
    B: ['llmguard', { LG_SRC: process.env.B_SRC ?? '../src/index.js' }],
  }
} else throw new Error('A_SRC (the SDK entry to compare against, e.g. ../.ab-a/src/index.js) or VARIANTS')
const names = Object.keys(variants)
if (names.length < 2) throw new Error('VARIANTS: at least a baseline and one more')
const fake = await startFakeOpenAI()
fake.keepRequests = false
const collector = await startFakeCollector({ trust: true })
const cpu: Record<string, number[]> = {}
const main: Record<string, number[]> = {}
for (const n of names) {
  cpu[n] = []
  main[n] = []
}
const env0 = { OPENAI_BASE: fake.baseURL, COLLECTOR: collector.url, KEY: TEST_KEY, CALLS: process.env.CALLS ?? '2000' }
const run = (mode: string, env: Record<string, string>): Promise<{ cpuMs: number; mainCpuMs: number; samples: number[] }> =>
  runChild('./worker.ts', [mode], { ...env0, ...env })
const block = blockFromEnv()
for (let r = 0; r < Number(process.env.ROUNDS ?? 6); r++) {
  const order = r % 2 ? [...names].reverse() : names
  const results = block > 0
    ? await runInterleaved('./worker.ts', order.map((n) => ({ args: [variants[n]![0]], env: { ...env0, ...variants[n]![1] } })), { warmup: Number(process.env.WARMUP ?? 300), calls: Number(env0.CALLS), block })
    : []
  for (const [i, n] of order.entries()) {
    const [mode, env] = variants[n]!
    const res = block > 0 ? results[i] : await run(mode, env)
    cpu[n]!.push((res.cpuMs / res.samples.length) * 1000)
    main[n]!.push((res.mainCpuMs / res.samples.length) * 1000)
  }
  process.stderr.write(`round ${r + 1}: ${names.map((n) => `${n} ${cpu[n]!.at(-1)!.toFixed(0)} (main ${main[n]!.at(-1)!.toFixed(0)})`).join(', ')} µs CPU/call\n`)
}
await fake.close()
await collector.close()
const base = names[0]!
for (const n of names.slice(1)) {
  const d = cpu[n]!.map((x, i) => x - cpu[base]![i]!)
  const all = meanSe(d)
  const onMain = meanSe(main[n]!.map((x, i) => x - main[base]![i]!))
  process.stdout.write(
    `${n}: added CPU µs/call over ${base} ${all.mean.toFixed(1)} ± ${all.se.toFixed(1)} (main thread ${onMain.mean.toFixed(1)} ± ${onMain.se.toFixed(1)}); per round ${d.map((x) => x.toFixed(0)).join(' ')}\n`,
  )
}
