/**
 * `tsx packages/sdk/bench/hotpath.ts`: LLMGuard's own CPU cost per call with the network noise
 * taken out. The openai client gets an in-memory `fetch` that answers at once, so a bare call
 * costs tens of µs instead of ~1 ms and the wrapper's share stands out of the machine's noise.
 * The fake collector runs in this (parent) process; each child process alternates blocks of bare
 * and wrapped calls. A diagnostic for tuning, not a target: `pnpm bench:sdk` is the judge.
 *
 * env ROUNDS (3 processes), BLOCKS (10 pairs each), CALLS (2000 per block), PACE_MS, REAL_HTTP,
 * LG_VARIANT ('memory' | 'nokey' | 'immediate'), ONLY_WRAPPED (for a CPU profile of the wrapper),
 * CHILD_NODE_ARGS (e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof').
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import OpenAI from 'openai'
import { startFakeCollector, TEST_KEY } from '../test/fakes/collector-server.js'
import { startFakeOpenAI } from '../test/fakes/openai-server.js'
import { LLMGuard } from '../src/index.js'

const calls = Number(process.env.CALLS ?? 2_000)
const blocks = Number(process.env.BLOCKS ?? 10)

const answer = JSON.stringify({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1_700_000_000,
  model: 'gpt-4o-mini-2024-07-18',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Your order left our warehouse on Monday; it should arrive tomorrow.', refusal: null }, logprobs: null, finish_reason: 'stop' }],
  usage: { prompt_tokens: 40, completion_tokens: 16, total_tokens: 56, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
})
const body = {
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system' as const, content: 'You are a helpful assistant for an online shop. Answer briefly and politely.' },
    { role: 'user' as const, content: 'Where is my order #48213? It was supposed to arrive on Tuesday and the tracking page has not changed for three days.' },
  ],
}

async function child(): Promise<void> {
  // PACE_MS=1 spaces calls like the loopback server does, so batches are as small as in bench:sdk
  const pace = Number(process.env.PACE_MS ?? 0)
  const fetch = async () => {
    if (pace) await new Promise((r) => setTimeout(r, pace))
    return new Response(answer, { status: 200, headers: { 'content-type': 'application/json', 'x-request-id': 'req_1' } })
  }
  // OPENAI_BASE (REAL_HTTP=1): the loopback fake server of bench:sdk instead of the in-memory fetch
  const real = process.env.OPENAI_BASE
  const options = real ? { apiKey: 'sk-bench', baseURL: real, maxRetries: 0 } : { apiKey: 'sk-bench', baseURL: 'http://127.0.0.1:9/v1', maxRetries: 0, fetch }
  const bare = new OpenAI(options)
  const dir = mkdtempSync(join(tmpdir(), 'llmguard-hot-'))
  const variant = process.env.LG_VARIANT ?? ''
  const guard = new LLMGuard({
    apiKey: variant.includes('nokey') ? undefined : TEST_KEY,
    endpoint: process.env.COLLECTOR,
    outbox: variant.includes('memory') ? ':memory:' : join(dir, 'outbox.sqlite'),
    durability: variant.includes('immediate') ? 'immediate' : 'buffered',
    // stretched timers for runs under valgrind, where a call takes ~20 ms
    ...(process.env.LG_WRITE_DELAY_MS ? { writeDelayMs: Number(process.env.LG_WRITE_DELAY_MS) } : {}),
    ...(process.env.LG_SHIP_DELAY_MS ? { shipDelayMs: Number(process.env.LG_SHIP_DELAY_MS) } : {}),
    logger: { warn: () => {} },
    env: {},
  })
  const wrapped = guard.wrap(new OpenAI(options))
  // blocks of bare and wrapped calls alternate in one process, so load on the machine and the
  // JIT's state hit both alike; each wrapped block ends with a flush, so its background work
  // (writing, shipping) is counted in it and never spills into the next bare block
  const block = async (api: OpenAI, flush: boolean): Promise<number> => {
    const cpu0 = process.cpuUsage()
    for (let i = 0; i < calls; i++) await api.chat.completions.create(body)
    if (flush) await guard.flush()
    const cpu = process.cpuUsage(cpu0)
    return (cpu.user + cpu.system) / calls
  }
  await block(bare, false)
  await block(wrapped, true)
  const added: number[] = []
  const ratios: number[] = []
  for (let b = 0; b < blocks; b++) {
    // ONLY_WRAPPED=1 for profiling the wrapped calls alone
    const x = process.env.ONLY_WRAPPED ? 0 : await block(bare, false)
    const y = process.env.ONLY_BARE ? 0 : await block(wrapped, true)
    added.push(y - x)
    ratios.push(x ? y / x : 0)
  }
  const stats = guard.stats()
  await guard.shutdown()
  rmSync(dir, { recursive: true, force: true })
  process.stdout.write(JSON.stringify({ added, ratios, sent: stats.sent, queued: stats.queued }) + '\n')
}

function run(mode: string, env: Record<string, string>): Promise<{ added: number[]; ratios: number[]; sent: number; queued: number }> {
  return new Promise((resolve, reject) => {
    // CHILD_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles the children (not allowed in NODE_OPTIONS)
    const extra = process.env.CHILD_NODE_ARGS ? process.env.CHILD_NODE_ARGS.split(' ') : []
    const p = spawn(process.execPath, [...extra, '--import', 'tsx', fileURLToPath(import.meta.url), mode], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!)) : reject(new Error(`${mode} exited ${code}`))))
  })
}

if (process.argv[2]) {
  await child()
} else {
  const collector = await startFakeCollector({ trust: true })
  const fake = process.env.REAL_HTTP ? await startFakeOpenAI() : undefined
  if (fake) fake.keepRequests = false
  const rounds = Number(process.env.ROUNDS ?? 3)
  const all: number[] = []
  const allRatios: number[] = []
  for (let r = 0; r < rounds; r++) {
    const res = await run('child', fake ? { COLLECTOR: collector.url, OPENAI_BASE: fake.baseURL } : { COLLECTOR: collector.url })
    all.push(...res.added)
    allRatios.push(...res.ratios)
    process.stderr.write(`round ${r + 1}: added ${res.added.map((x) => x.toFixed(0)).join(' ')} µs (sent ${res.sent}, queued ${res.queued})\n`)
  }
  await collector.close()
  await fake?.close()
  const sorted = [...all].sort((a, b) => a - b)
  const q = (p: number) => sorted[Math.floor(p * (sorted.length - 1))]!.toFixed(1)
  const r = [...allRatios].sort((a, b) => a - b)
  const rq = (p: number) => r[Math.floor(p * (r.length - 1))]!.toFixed(3)
  process.stdout.write(`added CPU µs/call over ${all.length} block pairs: median ${q(0.5)} (quartiles ${q(0.25)}–${q(0.75)}); wrapped/bare CPU ratio median ${rq(0.5)} (${rq(0.25)}–${rq(0.75)})\n`)
}
