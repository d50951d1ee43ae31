// The benchmarks' HTTP load generator, run on a worker thread (see runLoad in bench.mjs): undici
// with keep-alive connections, `concurrency` requests in flight. Jobs:
//   ingest  pre-generates `count` records in batches of `batch` (serialised before timing), then
//           POSTs every batch once;
//   list    sends each of `requests` ({path, tag}) once, recording each latency;
//   rate    repeats one GET for `durationMs` and counts the answers.
import { pathToFileURL } from 'node:url'
import { parentPort, workerData } from 'node:worker_threads'
import { makeRecords } from './records.mjs'

const job = workerData
const { Pool } = await import(pathToFileURL(job.undiciPath).href)
const pool = new Pool(job.url, { connections: job.concurrency, pipelining: 1, keepAliveTimeout: 60_000 })

async function send(method, path, body) {
  const started = performance.now()
  const res = await pool.request({
    method,
    path,
    headers: { ...job.headers, ...(body ? { 'content-type': 'application/json' } : {}) },
    body,
  })
  const text = await res.body.text()
  return { status: res.statusCode, text, ms: performance.now() - started }
}

/** Runs `work(i)` for i in 0..n-1 with `concurrency` in flight. */
async function inParallel(n, concurrency, work) {
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await work(next++)
    }),
  )
}

async function ingest() {
  const records = makeRecords(job.count, { seed: job.seed, days: job.days ?? 7 })
  const bodies = []
  for (let i = 0; i < records.length; i += job.batch) bodies.push(Buffer.from(JSON.stringify({ records: records.slice(i, i + job.batch) })))
  const bytes = bodies.reduce((s, b) => s + Buffer.byteLength(b), 0)
  const out = { accepted: 0, duplicates: 0, rejected: 0, failures: [], latencies: [], bytes, records: records.length }
  parentPort.postMessage({ started: true }) // the clock starts: runLoad's onStart
  const started = performance.now()
  out.retries = 0
  out.retryReasons = {}
  await inParallel(bodies.length, job.concurrency, async (i) => {
    let res = await send('POST', '/v1/llm/requests/batch', bodies[i])
    // a 5xx is retried as the SDK does (the batch is idempotent by record id); counted and reported
    for (let attempt = 1; res.status >= 500 && attempt <= 5; attempt++) {
      out.retries++
      const code = /"code":"(\w+)"/.exec(res.text)?.[1] ?? String(res.status)
      out.retryReasons[code] = (out.retryReasons[code] ?? 0) + 1
      await new Promise((r) => setTimeout(r, 20 * attempt))
      const again = await send('POST', '/v1/llm/requests/batch', bodies[i])
      again.ms += res.ms
      res = again
    }
    out.latencies.push(res.ms)
    if (res.status !== 200) {
      out.failures.push(`${res.status} ${res.text.slice(0, 200)}`)
      return
    }
    const r = JSON.parse(res.text)
    out.accepted += r.accepted
    out.duplicates += r.duplicates
    out.rejected += r.rejected.length
    if (r.rejected.length && out.failures.length < 5) out.failures.push(`rejected: ${JSON.stringify(r.rejected[0])}`)
  })
  out.elapsedMs = performance.now() - started
  return out
}

async function list() {
  const results = new Array(job.requests.length)
  const started = performance.now()
  await inParallel(job.requests.length, job.concurrency, async (i) => {
    const { path, tag } = job.requests[i]
    const res = await send('GET', path)
    let total
    if (res.status === 200 && job.total) total = JSON.parse(res.text).total
    results[i] = { tag, status: res.status, ms: res.ms, total, error: res.status === 200 ? undefined : res.text.slice(0, 200) }
  })
  return { results, elapsedMs: performance.now() - started }
}

async function rate() {
  const statuses = {}
  let count = 0
  const deadline = performance.now() + job.durationMs
  const started = performance.now()
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      while (performance.now() < deadline) {
        const res = await pool.request({ method: 'GET', path: job.path, headers: job.headers })
        await res.body.dump()
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1
        count++
      }
    }),
  )
  return { count, statuses, elapsedMs: performance.now() - started }
}

const result = await { ingest, list, rate }[job.kind]()
await pool.close()
parentPort.postMessage(result)
