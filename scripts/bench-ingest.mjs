// `pnpm bench:ingest`: records/s through the collector's full ingest path (HTTP, API-key auth,
// validation, scoring, storage, rollups, hooks) on real PostgreSQL, beside a raw COPY of the same
// rows into a copy of llm_requests with the same indexes, in the same database, in the same run.
// Target (SPEC §6): the collector ≥ 50 % of COPY (text, the default format); the ratio to the
// same rows COPYed in the binary format, the collector's own, is printed beside it.
import { PerformanceObserver } from 'node:perf_hooks'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { createProjectWithKey, raiseRateLimit, signIn } from './lib/api.mjs'
import { importFromCollector, int, log, mainThreadCpuMs, median, postgresCpuMs, runLoad, startBenchCollector, table, withThrowawayDatabase } from './lib/bench.mjs'

const RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2)
const BATCH = 500
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 4)
const WARMUP = 10_000
// the records' start times spread over this many days before now (a week: a backfill or `pnpm seed`)
const DAYS = Number(process.env.BENCH_DAYS ?? 7)
const TARGET = 0.5
const COPY_FK = process.env.BENCH_COPY_FK !== '0'

// every stored column but the two the database fills in (seq, created_at)
const COLUMNS = `project_id, id, prompt, response, model, requested_model, endpoint, latency,
  time_to_first_token, tokens, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
  status, error, stream, user_id, metadata, risk_score, risk_reasons, cost, policy_violation, "timestamp"`

async function main() {
  return withThrowawayDatabase('llmguard_bench_ingest', async (databaseUrl) => {
    log(`starting the collector on a throwaway database (${new URL(databaseUrl).pathname.slice(1)})`)
    // the search indexer is deferred work: kept out of the timed window and measured on its own below
    // and plan limits are off: a free plan's monthly allowance is far below a benchmark's volume
    const collector = await startBenchCollector(databaseUrl, { SEARCH_INDEX_LAG_MS: '3600000', PLAN_LIMITS: 'off' })
    const postgres = await importFromCollector('postgres')
    const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} })
    try {
      const { accessToken } = await signIn(collector.url, 'bench@llmguard.local', 'bench-password-1')
      const { project, key } = await createProjectWithKey(collector.url, accessToken, 'bench-ingest')
      const rateNote = await raiseRateLimit(collector.url, accessToken, project.id)
      log(rateNote)
      // a copy of the same table: columns, defaults, checks, indexes and the foreign key to projects
      // (BENCH_COPY_FK=0 leaves the foreign key out, as this benchmark did before 2026-11-25 evening)
      // and a second one for the same rows in COPY's binary format, which the collector sends
      for (const table of ['llm_requests_copy', 'llm_requests_copy_binary']) {
        await sql.unsafe(`create table ${table} (like llm_requests including all)`)
        if (COPY_FK) await sql.unsafe(`alter table ${table} add foreign key (project_id) references projects (id) on delete cascade`)
      }

      const ingest = async (count, seed, onStart) => {
        const out = await runLoad({ kind: 'ingest', url: collector.url, concurrency: CLIENTS, headers: { authorization: `Bearer ${key}` }, count, batch: BATCH, seed, days: DAYS, onStart })
        if (out.failures.length || out.accepted !== count) {
          throw new Error(`ingest stored ${out.accepted}/${count} records: ${out.failures.slice(0, 3).join('; ')}`)
        }
        return out
      }
      // the rows the collector just stored, as COPY text, to COPY again into the copy table
      // (on a connection of its own, closed afterwards: postgres.js 3.4 leaves a connection stuck
      // after a COPY TO readable of a few hundred chunks, so it must not be reused)
      const dump = async (afterSeq, format = 'text') => {
        const reader = postgres(databaseUrl, { max: 1, onnotice: () => {} })
        try {
          const chunks = []
          const readable = await reader.unsafe(`copy (select ${COLUMNS} from llm_requests where seq > ${afterSeq} order by seq) to stdout (format ${format})`).readable()
          for await (const chunk of readable) chunks.push(chunk)
          return chunks
        } finally {
          await reader.end({ timeout: 0 })
        }
      }
      const copy = async (chunks, format = 'text') => {
        const table = format === 'binary' ? 'llm_requests_copy_binary' : 'llm_requests_copy'
        const writable = await sql.unsafe(`copy ${table} (${COLUMNS}) from stdin (format ${format})`).writable()
        const started = performance.now()
        await pipeline(Readable.from(chunks), writable)
        return performance.now() - started
      }
      const lastSeq = async () => (await sql`select coalesce(max(seq), 0)::int as n from llm_requests`)[0].n

      log(`warm-up: ${int(WARMUP)} records over HTTP, then the same rows by COPY`)
      let seq = await lastSeq()
      await ingest(WARMUP, 1)
      await copy(await dump(seq))
      await copy(await dump(seq, 'binary'), 'binary')

      // the main thread's garbage-collection pauses (this process's isolate: the collector's)
      let gcMs = 0
      const gcObserver = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) gcMs += entry.duration
      })
      gcObserver.observe({ entryTypes: ['gc'] })

      const rounds = []
      for (let round = 1; round <= ROUNDS; round++) {
        seq = await lastSeq()
        await sql`checkpoint`
        log(`round ${round}/${ROUNDS}: ${int(RECORDS)} records, batches of ${BATCH}, ${CLIENTS} clients`)
        // from the moment the records are ready: PostgreSQL's CPU, and the collector's main thread
        // (it runs in this process): its CPU, its GC pauses and its busy share (event-loop utilisation)
        let pgBefore, mainBefore, eluBefore, gcBefore
        const http = await ingest(RECORDS, 1000 + round, () => {
          pgBefore = postgresCpuMs()
          mainBefore = mainThreadCpuMs()
          eluBefore = performance.eventLoopUtilization()
          gcBefore = gcMs
        })
        const httpPgUs = ((postgresCpuMs() - pgBefore) * 1000) / RECORDS
        const mainUs = ((mainThreadCpuMs() - mainBefore) * 1000) / RECORDS
        const gcUs = ((gcMs - gcBefore) * 1000) / RECORDS
        const elu = performance.eventLoopUtilization(eluBefore).utilization
        const httpRate = RECORDS / (http.elapsedMs / 1000)
        const retried = http.retries ? `, ${http.retries} batches retried after ${JSON.stringify(http.retryReasons)}` : ''
        log(`  HTTP: ${int(httpRate)} records/s (${(http.elapsedMs / 1000).toFixed(1)} s, ${Math.round(http.bytes / RECORDS)} bytes/record as JSON${retried})`)
        const chunks = await dump(seq)
        const copyBytes = chunks.reduce((s, c) => s + c.length, 0)
        await sql`checkpoint`
        const pgBeforeCopy = postgresCpuMs()
        const copyMs = await copy(chunks)
        const copyPgUs = ((postgresCpuMs() - pgBeforeCopy) * 1000) / RECORDS
        const copyRate = RECORDS / (copyMs / 1000)
        log(`  COPY: ${int(copyRate)} records/s (${(copyMs / 1000).toFixed(1)} s, ${Math.round(copyBytes / RECORDS)} bytes/row as COPY text)`)
        const binaryChunks = await dump(seq, 'binary')
        await sql`checkpoint`
        const binaryRate = RECORDS / ((await copy(binaryChunks, 'binary')) / 1000)
        log(`  COPY, binary format: ${int(binaryRate)} records/s`)
        rounds.push({ httpRate, copyRate, binaryRate, httpPgUs, copyPgUs, mainUs, gcUs, elu, batchP50: median(http.latencies), retries: http.retries })
      }

      gcObserver.disconnect()

      const [{ n: stored }] = await sql`select count(*)::int as n from llm_requests`
      const [{ n: copied }] = await sql`select count(*)::int as n from llm_requests_copy`
      const [{ n: copiedBinary }] = await sql`select count(*)::int as n from llm_requests_copy_binary`
      const [{ n: rollupRequests }] = await sql`select sum(requests)::int as n from request_rollups`
      if (stored !== copied || stored !== copiedBinary || rollupRequests !== stored) {
        throw new Error(`row counts disagree: stored ${stored}, copied ${copied} and ${copiedBinary}, rollups ${rollupRequests}`)
      }

      log('search indexer catch-up over every stored row (deferred work, not in the timed window)')
      const indexStarted = performance.now()
      let indexed = 0
      for (let n; (n = await collector.app.searchIndexer.runOnce(0)) > 0; ) indexed += n
      const indexRate = indexed / ((performance.now() - indexStarted) / 1000)

      const bestHttp = Math.max(...rounds.map((r) => r.httpRate))
      const bestCopy = Math.max(...rounds.map((r) => r.copyRate))
      const bestBinary = Math.max(...rounds.map((r) => r.binaryRate))
      const ratio = bestHttp / bestCopy
      const indexes = (await sql`select count(*)::int as n from pg_indexes where tablename = 'llm_requests_copy'`)[0].n
      console.log(`\ningest on PostgreSQL ${(await sql`show server_version`)[0].server_version}, ${int(RECORDS)} records per round, ${ROUNDS} rounds, Node ${process.versions.node}`)
      console.log(`record timestamps spread over the last ${DAYS} days; PLAN_LIMITS=off; ${rateNote}; ${indexes} indexes on both tables, ${COPY_FK ? 'and the foreign key to projects on both' : 'the foreign key to projects on llm_requests only (BENCH_COPY_FK=0)'}\n`)
      table([
        ['round', 'collector HTTP rec/s', 'raw COPY rec/s', 'ratio', 'binary COPY rec/s', 'ratio', 'PostgreSQL CPU µs/rec HTTP', 'COPY', 'collector main thread µs/rec', 'of which GC', 'busy', 'batch p50', '5xx retries'],
        ...rounds.map((r, i) => [String(i + 1), int(r.httpRate), int(r.copyRate), `${(100 * r.httpRate / r.copyRate).toFixed(0)} %`, int(r.binaryRate), `${(100 * r.httpRate / r.binaryRate).toFixed(0)} %`, r.httpPgUs.toFixed(1), r.copyPgUs.toFixed(1), r.mainUs.toFixed(1), r.gcUs.toFixed(1), `${(100 * r.elu).toFixed(0)} %`, `${r.batchP50.toFixed(0)} ms`, String(r.retries)]),
        ['best of rounds', int(bestHttp), int(bestCopy), `${(100 * ratio).toFixed(0)} %`, int(bestBinary), `${(100 * bestHttp / bestBinary).toFixed(0)} %`, '', '', '', '', '', '', ''],
      ])
      console.log(`\ntarget: collector ≥ ${TARGET * 100} % of COPY (best of ${ROUNDS} rounds each) — ${ratio >= TARGET ? 'met' : 'NOT met'}`)
      console.log(`against COPY in the binary format (the collector's own since 2026-12-07): ${(100 * bestHttp / bestBinary).toFixed(0)} %`)
      console.log(`search indexer catch-up (trigram index, runs behind ingest): ${int(indexRate)} rows/s over ${int(indexed)} rows`)
      if (ratio < TARGET) process.exitCode = 1
    } finally {
      await sql.end()
      await collector.stop()
    }
  })
}

main().catch((err) => {
  process.stderr.write(`bench:ingest failed: ${err.stack ?? err.message}\n`)
  process.exit(1)
})
