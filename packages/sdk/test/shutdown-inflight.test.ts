import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startFakeCollector, type FakeCollector } from './fakes/collector-server.js'
import { makeGuard, tempDir, until } from './helpers.js'
import type { LLMGuard } from '../src/index.js'

/**
 * Shutdown while a batch is on its way to a collector that answers late, the disk fine: the
 * send is aborted within the bound and nothing of it runs after shutdown() has returned.
 */

let collector: FakeCollector
let tmp: ReturnType<typeof tempDir>
beforeAll(async () => {
  collector = await startFakeCollector()
})
afterAll(async () => {
  await collector.close()
})
beforeEach(() => {
  tmp = tempDir()
  collector.stored.clear()
  collector.batchDelayMs = 0
})
afterEach(() => tmp.cleanup())

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const shipperOf = (guard: LLMGuard) => (guard as unknown as { pipeline: { shipper: { busy: boolean } } }).pipeline.shipper

describe('shutdown with a send in flight', () => {
  it('aborts it within the bound: no pass outlives shutdown, no false outbox warning, stats() stay as returned', async () => {
    const { guard, warnings } = makeGuard(collector, tmp.dir, { policy: false, shipDelayMs: 20 })
    // answers after 2 s: past shutdown's bound, well within the test's
    collector.batchDelayMs = 2_000
    for (let i = 0; i < 20; i++) guard.record({ prompt: `h${i}`, model: 'm', latency: 1 })
    await until(() => shipperOf(guard).busy, 5_000, 'a batch in flight')
    await guard.shutdown({ timeoutMs: 300 })
    // before: close() then destroy() left the request running until the collector answered
    expect(shipperOf(guard).busy).toBe(false)
    const after = guard.stats()
    expect(after.sent).toBe(0)
    // the records of the aborted batch stay in the file for the next start
    expect(after.queued).toBe(20)
    await sleep(2_500)
    // before: the late answer counted 20 as sent, and the pass went on against the closed file:
    // "cannot write the outbox" and OUTBOX_ERROR with no disk trouble at all
    expect(guard.stats()).toEqual(after)
    // the abort is shutdown's own, and said so (not as a network failure)
    expect(after.lastError).toMatchObject({ code: 'SHUTDOWN_TIMEOUT', message: expect.stringContaining('stay in the outbox for the next start') })
    expect(warnings.filter((w) => w.startsWith('cannot write the outbox'))).toEqual([])
  })

  it("the same with the outbox in memory (':memory:', or SQLite unavailable): stats() stay as shutdown returned them", async () => {
    const { guard } = makeGuard(collector, tmp.dir, { policy: false, shipDelayMs: 20, outbox: ':memory:' })
    collector.batchDelayMs = 2_000
    for (let i = 0; i < 20; i++) guard.record({ prompt: `m${i}`, model: 'm', latency: 1 })
    await until(() => shipperOf(guard).busy, 5_000, 'a batch in flight')
    await guard.shutdown({ timeoutMs: 300 })
    expect(shipperOf(guard).busy).toBe(false)
    const after = guard.stats()
    expect(after.sent).toBe(0)
    await sleep(2_500)
    // before: the aborted send ended on a later tick, and counted itself as retried then
    expect(guard.stats()).toEqual(after)
  })

  it('a flush after shutdown touches the closed outbox no more', async () => {
    const { guard, warnings } = makeGuard(collector, tmp.dir, { policy: false, shipDelayMs: 20 })
    guard.record({ prompt: 'x', model: 'm', latency: 1 })
    await guard.shutdown({ timeoutMs: 1_000 })
    const after = guard.stats()
    await guard.flush({ timeoutMs: 500 })
    expect(guard.stats()).toEqual(after)
    expect(warnings.filter((w) => w.startsWith('cannot write the outbox'))).toEqual([])
  })
})
