/**
 * One benchmark run in its own process (so one wrapper's global hooks, e.g. OpenTelemetry's
 * context manager, never slow another's run): N chat calls against the fake OpenAI server,
 * each timed, then the wrapper's flush, timed too.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import OpenAI from 'openai'

const mode = process.argv[2] as 'bare' | 'llmguard' | 'langfuse'
const n = Number(process.env.CALLS ?? 2000)
const warmup = Number(process.env.WARMUP ?? 300)
const client = new OpenAI({ apiKey: 'sk-bench', baseURL: process.env.OPENAI_BASE, maxRetries: 0 })
const body = {
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system' as const, content: 'You are a helpful assistant for an online shop. Answer briefly and politely.' },
    { role: 'user' as const, content: 'Where is my order #48213? It was supposed to arrive on Tuesday and the tracking page has not changed for three days.' },
  ],
}

// Every mode sends its OpenAI calls through the global fetch on Node's own dispatcher, as a plain
// app does: the SDK loads its undici without undici's entry point, which would have installed
// itself as that dispatcher (@llmguard/shared's undici.ts). Until 2026-12-06 the SDK did, so
// this worker imported undici in every mode to give all three the same stack.
let api: OpenAI = client
let flush: () => Promise<void> = async () => {}
let close: () => Promise<void> = async () => {}
let extra: () => unknown = () => undefined
const dir = mkdtempSync(join(tmpdir(), 'llmguard-bench-'))

if (mode === 'llmguard') {
  // LG_SRC: the SDK entry to load. By default the built package (bench:sdk builds it first), as
  // an app loads it; '../src/index.js' runs the TypeScript sources through tsx, which costs the
  // calls more than the build does. For A/B runs of two commits on one machine state, an older
  // commit's src unpacked with `git archive <commit> src | tar -x -C packages/sdk/.old` and
  // LG_SRC=../.old/src/index.js, against LG_SRC=../src/index.js (like with like)
  const { LLMGuard } = (await import(process.env.LG_SRC ?? '../dist/index.js')) as typeof import('../src/index.js')
  // LG_VARIANT (for finding where the time goes): 'memory' = no SQLite, 'nokey' = no shipping
  const variant = process.env.LG_VARIANT ?? ''
  const timeScale = Number(process.env.LG_TIME_SCALE ?? 0)
  const guard = new LLMGuard({
    apiKey: variant.includes('nokey') ? undefined : process.env.KEY,
    endpoint: process.env.COLLECTOR,
    outbox: variant.includes('memory') ? ':memory:' : join(dir, 'outbox.sqlite'),
    logger: { warn: () => {} },
    env: {},
    // LG_TIME_SCALE (with BLOCK, e.g. 3 for three modes taking turns): the SDK's timers this many
    // times their defaults, so its writes and batches hold as many records as when it runs alone
    ...(timeScale ? { writeDelayMs: 50 * timeScale, shipDelayMs: 1000 * timeScale, pollMs: 5000 * timeScale } : {}),
    // LG_OPTS (experiments): JSON of further LLMGuard options, e.g. {"writeDelayMs":20}
    ...(process.env.LG_OPTS ? (JSON.parse(process.env.LG_OPTS) as object) : {}),
    // LG_SHIP_DELAY_MS (diagnostic, e.g. 20000): no batch goes out during the timed calls, only in
    // the final flush, which the run counts too: tells what shipping costs beside the calls from
    // what the same shipping costs on its own
    ...(process.env.LG_SHIP_DELAY_MS ? { shipDelayMs: Number(process.env.LG_SHIP_DELAY_MS), pollMs: Number(process.env.LG_SHIP_DELAY_MS) } : {}),
  })
  api = guard.wrap(client)
  flush = () => guard.flush()
  close = () => guard.shutdown()
  extra = () => guard.stats()
} else if (mode === 'langfuse') {
  const { NodeTracerProvider } = await import('@opentelemetry/sdk-trace-node')
  const { LangfuseSpanProcessor } = await import('@langfuse/otel')
  const { observeOpenAI } = await import('@langfuse/openai')
  const processor = new LangfuseSpanProcessor({ publicKey: 'pk-lf-bench', secretKey: 'sk-lf-bench', baseUrl: process.env.OTLP_SINK })
  const provider = new NodeTracerProvider({ spanProcessors: [processor] })
  provider.register()
  api = observeOpenAI(client)
  flush = () => processor.forceFlush()
  close = () => provider.shutdown()
}

// BARE_SHIP (a probe, bare mode): the bare client plus a 600-record batch POSTed every second,
// gzipped, to the fake collector, through 'sdk' (the SDK's transport: a private undici Agent),
// 'http' (node:http), 'shared' (undici's entry point, which makes its Agent the app's fetch
// dispatcher: how the SDK shipped before 2026-12-06) or 'thread' (node:http on a worker thread,
// which also builds the records: its own isolate, so none of the app's code or Node's shares JIT
// state with the shipping). Tells what sharing the HTTP stack costs.
let stopShipping = () => {}
if (mode === 'bare' && process.env.BARE_SHIP) stopShipping = await startBareShipping(process.env.BARE_SHIP)
// BLOCKS (set by bench:sdk): the calls, warm-up included, run in blocks of this many, each on the
// parent's word over IPC, so the parent can interleave the modes' processes block by block;
// otherwise the warm-up and then all n timed calls at once
const blockSize = Number(process.env.BLOCKS ?? 0)
const inBlocks = blockSize > 0 && !!process.send
async function warmUp(k: number): Promise<void> {
  for (let i = 0; i < k; i++) await api.chat.completions.create(body)
}
if (!inBlocks) {
  await warmUp(warmup)
  await flush()
}
/**
 * CPU ms of this process's main thread (Linux; NaN elsewhere). The rest of the process's CPU is
 * its other threads: V8's compiler and GC helpers, libuv's pool. In a run this short the
 * compiler threads are still busy optimising the client's code, so the split tells JIT warm-up
 * from work on the event loop.
 */
function mainThreadCpuMs(): number {
  try {
    const st = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8')
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ')
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100
  } catch {
    return NaN
  }
}
const samples: number[] = []
let callsMs = 0
// CPU time of this process (all threads: gzip on the pool included) is the steadier measure
// when other work shares the machine; wall time is what the caller feels. Counted from the first
// timed call to the end of the final flush, so background work between blocks is counted too
let cpu0: NodeJS.CpuUsage | undefined
let main0 = NaN
async function runCalls(k: number): Promise<void> {
  if (!cpu0) {
    cpu0 = process.cpuUsage()
    main0 = mainThreadCpuMs()
  }
  const t0 = performance.now()
  for (let i = 0; i < k; i++) {
    const t = performance.now()
    await api.chat.completions.create(body)
    samples.push(performance.now() - t)
  }
  callsMs += performance.now() - t0
}
async function finish(): Promise<string> {
  const tf = performance.now()
  await flush()
  const flushMs = performance.now() - tf
  const cpu = process.cpuUsage(cpu0)
  const cpuMs = (cpu.user + cpu.system) / 1000
  const mainCpuMs = mainThreadCpuMs() - main0
  const stats = extra()
  stopShipping()
  await close()
  rmSync(dir, { recursive: true, force: true })
  return JSON.stringify({ mode, samples, callsMs, flushMs, cpuMs, mainCpuMs, stats })
}
if (inBlocks) {
  process.on('message', (m: { warm?: number; warmed?: boolean; run?: number; finish?: boolean }) => {
    if (m.warm) void warmUp(m.warm).then(() => process.send!({ done: true }))
    // the end of the warm-up, as without blocks: what it left queued is shipped before the timed calls
    else if (m.warmed) void flush().then(() => process.send!({ done: true }))
    else if (m.run) void runCalls(m.run).then(() => process.send!({ done: true }))
    else if (m.finish) void finish().then((out) => process.send!({ result: out }, () => process.disconnect()))
  })
  // the parent gone (it failed, or was stopped): nothing is left to report to
  process.on('disconnect', () => process.exit(0))
  process.send({ ready: true })
} else {
  await runCalls(n)
  process.stdout.write((await finish()) + '\n')
}

/** Starts the probe's shipping; returns what stops it. */
async function startBareShipping(via: string): Promise<() => void> {
  const { randomUUID } = await import('node:crypto')
  const { gzipSync } = await import('node:zlib')
  const { request } = await import('node:http')
  const { createRequire } = await import('node:module')
  const url = new URL(`${process.env.COLLECTOR}/v1/llm/requests/batch`)
  const headers = { authorization: `Bearer ${process.env.KEY}`, 'content-type': 'application/json', 'content-encoding': 'gzip' }
  const batch = () => {
    const records: string[] = []
    for (let i = 0; i < 600; i++) {
      records.push(JSON.stringify({ id: randomUUID(), prompt: `system: ${body.messages[0].content}\nuser: ${body.messages[1].content}`, model: body.model, latency: 1, timestamp: new Date().toISOString(), endpoint: 'chat.completions', stream: false, response: 'Your order left our warehouse on Monday; it should arrive tomorrow.', promptTokens: 40, completionTokens: 16, tokens: 56, status: 'success' }))
    }
    return `{"records":[${records.join(',')}]}`
  }
  let send: () => Promise<void>
  if (via === 'sdk') {
    const { createUndiciTransport } = await import('../src/transport/undici.js')
    const t = createUndiciTransport({ endpoint: process.env.COLLECTOR!, apiKey: process.env.KEY! })
    send = async () => void (await t.sendBatch(batch()))
  } else if (via === 'shared') {
    // undici's entry point, resolved where the SDK's undici lives
    const undici = createRequire(new URL('../../shared/package.json', import.meta.url))('undici') as typeof import('undici')
    send = async () => void (await (await undici.request(url, { method: 'POST', headers, body: gzipSync(batch(), { level: 1 }) })).body.text())
  } else if (via === 'http') {
    send = () =>
      new Promise<void>((resolve, reject) => {
        const req = request(url, { method: 'POST', headers }, (res) => res.resume().on('end', resolve))
        req.on('error', reject)
        req.end(gzipSync(batch(), { level: 1 }))
      })
  } else if (via === 'thread') {
    const { Worker } = await import('node:worker_threads')
    // CommonJS evaluated in the thread: the same batch as 'http', built and sent there
    const code = `
      const { randomUUID } = require('node:crypto'); const { gzipSync } = require('node:zlib'); const { request } = require('node:http')
      const { workerData, parentPort } = require('node:worker_threads')
      const url = new URL(workerData.url)
      const batch = () => { const records = []; for (let i = 0; i < 600; i++) records.push(JSON.stringify({ id: randomUUID(), prompt: workerData.prompt, model: 'gpt-4o-mini', latency: 1, timestamp: new Date().toISOString(), endpoint: 'chat.completions', stream: false, response: 'Your order left our warehouse on Monday; it should arrive tomorrow.', promptTokens: 40, completionTokens: 16, tokens: 56, status: 'success' })); return '{"records":[' + records.join(',') + ']}' }
      const send = () => new Promise((resolve, reject) => { const req = request(url, { method: 'POST', headers: workerData.headers }, (res) => res.resume().on('end', resolve)); req.on('error', reject); req.end(gzipSync(batch(), { level: 1 })) })
      parentPort.on('message', () => void send().then(() => parentPort.postMessage('done')))
    `
    const w = new Worker(code, { eval: true, workerData: { url: url.href, headers, prompt: `system: ${body.messages[0].content}\nuser: ${body.messages[1].content}` } })
    w.unref()
    send = () => new Promise<void>((resolve) => { w.once('message', () => resolve()); w.postMessage('go') })
  } else throw new Error(`BARE_SHIP: sdk, http, shared or thread, not ${via}`)
  // the SDK's transport never holds the process open (its sockets are unref'd): nothing else
  // does yet, and a top-level await on it alone would end the process (exit code 13)
  const hold = setInterval(() => {}, 1000)
  await send()
  clearInterval(hold)
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const loop = () => {
    if (stopped) return
    timer = setTimeout(() => void send().then(loop), 1000)
    timer.unref()
  }
  loop()
  return () => {
    stopped = true
    clearTimeout(timer)
  }
}
