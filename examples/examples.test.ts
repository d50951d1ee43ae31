import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFakeCollector, TEST_KEY, type FakeCollector } from '../packages/sdk/test/fakes/collector-server.js'
import { tempDir } from '../packages/sdk/test/helpers.js'
import { main as plain } from './plain.js'
import { main as streaming } from './streaming.js'
import { start as httpServer } from './http-server.js'
import { join } from 'node:path'

let collector: FakeCollector
let tmp: ReturnType<typeof tempDir>
beforeAll(async () => {
  collector = await startFakeCollector()
  tmp = tempDir()
  delete process.env.OPENAI_API_KEY
})
afterAll(async () => {
  await collector.close()
  tmp.cleanup()
})
const opts = (name: string) => ({ apiKey: TEST_KEY, endpoint: collector.url, outbox: join(tmp.dir, `${name}.sqlite`), env: {}, logger: { warn: () => {} } })
const prompts = () => [...collector.stored.values()].map((r) => String(r.prompt))

describe('examples run against a collector and the fake OpenAI server', () => {
  it('plain script', async () => {
    const stats = await plain(opts('plain'))
    expect(stats).toMatchObject({ sent: 3, queued: 0 })
  })

  it('streaming', async () => {
    const text = await streaming(opts('streaming'))
    expect(text).toBe('Streams are recorded chunk by chunk.')
    expect(prompts()).toContain('user: Explain streaming in one sentence.')
  })

  it('HTTP server: user ids recorded, the policy rate limit answered with 429 and the block recorded', async () => {
    collector.setPolicy({ userRateLimits: { mallory: 1 } })
    const { url, stop, guard } = await httpServer(opts('http'), 0)
    await guard.refreshPolicy()
    const ask = (user: string) => fetch(`${url}/ask`, { method: 'POST', headers: { 'x-user': user }, body: 'What is an outbox?' })
    expect((await ask('alice')).status).toBe(200)
    expect((await ask('mallory')).status).toBe(200)
    expect((await ask('mallory')).status).toBe(429)
    await stop()
    const users = [...collector.stored.values()].filter((r) => r.prompt === 'user: What is an outbox?').map((r) => r.userId)
    expect(users.sort()).toEqual(['alice', 'mallory', 'mallory'])
    expect([...collector.stored.values()].filter((r) => r.userId === 'mallory').map((r) => r.status).sort()).toEqual(['error', 'success'])
  })
})
