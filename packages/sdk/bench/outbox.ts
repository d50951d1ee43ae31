/**
 * The outbox's sustained write rate and the longest event-loop stall it causes: records are
 * enqueued as fast as a busy app could (bursts of 100 per macrotask) with shipping off, and
 * the run ends when SQLite holds them all.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
// the built package, as in the call benchmark (bench:sdk builds it first)
const { LLMGuard } = (await import('../dist/index.js')) as typeof import('../src/index.js')

const total = Number(process.env.RECORDS ?? 100_000)
const dir = mkdtempSync(join(tmpdir(), 'llmguard-bench-outbox-'))
const guard = new LLMGuard({ outbox: join(dir, 'outbox.sqlite'), maxOutboxRecords: total * 2, logger: { warn: () => {} }, env: {} })
const prompt = 'user: Where is my order #48213? It was supposed to arrive on Tuesday and the tracking page has not changed for three days.'
const h = monitorEventLoopDelay({ resolution: 1 })
h.enable()
const t0 = performance.now()
let sent = 0
while (sent < total) {
  for (let i = 0; i < 100 && sent < total; i++, sent++) {
    guard.record({ prompt, response: 'Your order left our warehouse on Monday; it should arrive tomorrow.', model: 'gpt-4o-mini', latency: 420, promptTokens: 40, completionTokens: 16 })
  }
  await new Promise((r) => setImmediate(r))
}
// with shipping off, flush() is the writer's last transaction
await guard.flush()
const ms = performance.now() - t0
h.disable()
const stats = guard.stats()
if (stats.queued !== total) throw new Error(`expected ${total} records in the outbox, found ${stats.queued}`)
await guard.shutdown()
rmSync(dir, { recursive: true, force: true })
process.stdout.write(
  JSON.stringify({ records: total, recordsPerSec: Math.round(total / (ms / 1000)), maxStallMs: h.max / 1e6, p99StallMs: h.percentile(99) / 1e6, maxOutboxOpMs: stats.maxOutboxOpMs }) + '\n',
)
