import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { createLogger } from '../src/logger.js'
import { startTestCollector, type TestCollector } from './helpers/collector.js'
import { createKey, PASSWORD, setupProject } from './helpers/accounts.js'

/**
 * After a run through every flow that handles a secret, no plaintext password, refresh token,
 * access token or API key is in any table or in any log line (at trace level).
 */
let collector: TestCollector
const lines: string[] = []
const secrets: string[] = [PASSWORD]

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk))
      done()
    },
  })
  collector = await startTestCollector({ logger: createLogger('trace', sink as never) })
})
afterAll(() => collector?.close())

describe('what the logs keep', () => {
  it('an opened incident names its key (a model, a monitor): not redacted as if it were an API key', async () => {
    const { key } = await setupProject(collector)
    await collector.client.post('/v1/llm/requests', { prompt: 'slow one', model: 'slow-model-x', latency: 9_000 }, { token: key.key })
    const opened = lines.map((l) => JSON.parse(l) as { msg?: string; incidentKey?: string }).find((l) => l.msg === 'incident opened' && l.incidentKey === 'slow-model-x')
    expect(opened).toBeDefined()
  })
})

describe('secrets at rest and in logs', () => {
  it('are nowhere to be found after register, login, refresh, keys, rotation, failures', async () => {
    const { user, project, key } = await setupProject(collector)
    secrets.push(user.refreshToken, user.accessToken, key.key)
    const login = await collector.client.post<{ tokens: { accessToken: string; refreshToken: string } }>('/v1/auth/login', { email: user.email, password: PASSWORD })
    secrets.push(login.tokens.accessToken, login.tokens.refreshToken)
    const refreshed = await collector.client.post<{ tokens: { accessToken: string; refreshToken: string } }>('/v1/auth/refresh', { refreshToken: login.tokens.refreshToken })
    secrets.push(refreshed.tokens.refreshToken)
    // a reuse, a bad password and a revoked key all log something
    await collector.client.post('/v1/auth/refresh', { refreshToken: login.tokens.refreshToken }).catch(() => undefined)
    await collector.client.post('/v1/auth/login', { email: user.email, password: `${PASSWORD}!` }).catch(() => undefined)
    const second = await createKey(collector, user, project.id)
    secrets.push(second.key)
    const rotated = await collector.client.post<{ key: string }>(`/v1/projects/${project.id}/keys/${second.id}/rotate`, undefined, { token: user.accessToken })
    secrets.push(rotated.key)
    await collector.client.get('/v1/llm/policy', { token: second.key }).catch(() => undefined)
    await collector.client.get('/v1/llm/policy', { token: key.key })
    await request(`${collector.url}/v1/llm/policy`, { headers: { 'x-api-key': key.key } }).then((r) => r.body.dump())
    await collector.client.post('/v1/auth/logout', { refreshToken: refreshed.tokens.refreshToken })

    const tables = await collector.sql<{ table_name: string }[]>`
      select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`
    let dump = ''
    for (const { table_name } of tables) {
      const rows = await collector.sql.unsafe(`select * from "${table_name}"`)
      dump += JSON.stringify(rows)
    }
    expect(lines.length).toBeGreaterThan(5)
    const logs = lines.join('\n')
    for (const secret of secrets) {
      expect(dump.includes(secret), 'in the database').toBe(false)
      expect(logs.includes(secret), 'in the logs').toBe(false)
      // nor the part after the lg_ prefix
      if (secret.startsWith('lg_')) expect(dump.includes(secret.slice(3)) || logs.includes(secret.slice(3))).toBe(false)
    }
  })
})
