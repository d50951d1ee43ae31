// `pnpm bench:auth`: requests/s of an API-key authenticated GET (`GET /v1/llm/policy`, what every
// SDK polls) beside a bare hyper-express "hello" route, under the same load generator in the same
// run (target ≥ 50 %, SPEC §6), plus the unauthenticated /healthz through the same route layer,
// and the login latency that argon2id costs. Runs on PostgreSQL (BENCH_DATABASE_URL).
import { createProjectWithKey, raiseRateLimit, signIn } from './lib/api.mjs'
import { int, log, ms, percentile, runLoad, startBenchCollector, startHello, table, withThrowawayDatabase } from './lib/bench.mjs'

const TARGET = 0.5
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32)
const LOGINS = 20

async function bestRate(url, path, headers) {
  await runLoad({ kind: 'rate', url, path, headers, concurrency: CONNECTIONS, durationMs: 1000 }) // warm-up
  let best = 0
  let statuses = {}
  for (let round = 0; round < 2; round++) {
    const r = await runLoad({ kind: 'rate', url, path, headers, concurrency: CONNECTIONS, durationMs: SECONDS * 1000 })
    const ok = (r.statuses[200] ?? 0) + (r.statuses[304] ?? 0)
    best = Math.max(best, ok / (r.elapsedMs / 1000))
    statuses = r.statuses
  }
  return { rate: best, statuses }
}

await withThrowawayDatabase('llmguard_bench_auth', async (databaseUrl) => {
  const collector = await startBenchCollector(databaseUrl)
  const hello = await startHello()
  try {
    const email = `bench-${process.pid}@example.com`
    const password = 'bench password 123'
    const { accessToken } = await signIn(collector.url, email, password)
    const { project, key } = await createProjectWithKey(collector.url, accessToken, 'bench')
    log(await raiseRateLimit(collector.url, accessToken, project.id))

    const logins = []
    for (let i = 0; i < LOGINS; i++) {
      const started = performance.now()
      const res = await fetch(`${collector.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) })
      if (res.status !== 200) throw new Error(`login answered ${res.status}`)
      await res.arrayBuffer()
      logins.push(performance.now() - started)
    }

    log(`measuring ${SECONDS} s × 2 rounds per server, ${CONNECTIONS} keep-alive connections`)
    const base = await bestRate(hello.url, '/', {})
    const health = await bestRate(collector.url, '/healthz', {})
    const policy = await bestRate(collector.url, '/v1/llm/policy', { authorization: `Bearer ${key}` })

    console.log(`\nrequests/s, best of 2 × ${SECONDS} s, ${CONNECTIONS} connections from one undici worker thread (Node ${process.versions.node}, ${databaseUrl.replace(/\/\/[^@]*@/, '//')}):\n`)
    table([
      ['route', 'req/s', 'vs hello', 'answers'],
      ['hyper-express hello (baseline)', int(base.rate), '100 %', JSON.stringify(base.statuses)],
      ['collector GET /healthz (no auth)', int(health.rate), `${((health.rate / base.rate) * 100).toFixed(0)} %`, JSON.stringify(health.statuses)],
      ['collector GET /v1/llm/policy (API key)', int(policy.rate), `${((policy.rate / base.rate) * 100).toFixed(0)} %`, JSON.stringify(policy.statuses)],
    ])
    console.log(`\nlogin (argon2id m=19456 KiB, t=2, p=1): p50 ${ms(percentile(logins, 0.5))}, p95 ${ms(percentile(logins, 0.95))} over ${LOGINS} sequential logins`)
    const met = policy.rate / base.rate >= TARGET
    console.log(`\ntarget API-key GET ≥ ${TARGET * 100} % of hello — ${met ? 'met' : 'MISSED'}`)
    if (!met) process.exitCode = 1
  } finally {
    await hello.stop()
    await collector.stop()
  }
})
