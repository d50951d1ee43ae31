import { readFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { ConfigError, envSchema, loadConfig } from '../src/config.js'
import { startCollector } from '../src/collector.js'
import { spawnCollector } from './helpers/process.js'
import { freePort } from './helpers/collector.js'

const SECRET = 'x'.repeat(48)

describe('configuration', () => {
  it('needs nothing in development and applies the defaults', () => {
    const config = loadConfig({})
    expect(config.port).toBe(3000)
    expect(config.dataDir).toBe('./.llmguard')
    expect(config.database.url).toBeUndefined()
    expect(config.allowSignup).toBe(true)
    expect(config.planLimits).toBe(true)
    expect(config.openai.rcaModel).toBe('gpt-4')
    expect(config.trustProxyHops).toBe(0)
  })

  it('requires the database and the three secrets in production, naming each', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(ConfigError)
    try {
      loadConfig({ NODE_ENV: 'production', JWT_SECRET: SECRET })
    } catch (err) {
      const message = (err as Error).message
      expect(message).toContain('DATABASE_URL: is required when NODE_ENV=production')
      expect(message).toContain('REFRESH_TOKEN_SECRET')
      expect(message).toContain('API_KEY_PEPPER')
      expect(message).not.toContain('JWT_SECRET')
    }
    const ok = loadConfig({
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://u@db/llmguard',
      JWT_SECRET: SECRET,
      REFRESH_TOKEN_SECRET: SECRET,
      API_KEY_PEPPER: SECRET,
    })
    expect(ok.production).toBe(true)
  })

  it.each([
    ['PORT', 'eighty', 'PORT'],
    ['PORT', '70000', 'PORT'],
    // Number() would read these as 16, 1000 and 0
    ['PORT', '0x10', 'PORT: must be a port number'],
    ['PORT', '1e3', 'PORT: must be a port number'],
    ['DATABASE_POOL_SIZE', '0x2', 'DATABASE_POOL_SIZE: must be a whole number'],
    ['TRUST_PROXY', '0x2', 'TRUST_PROXY'],
    ['DATABASE_URL', 'postgres://u:p%ZZx@127.0.0.1:5432/db', 'DATABASE_URL: the user or password holds a % that is not an escape'],
    ['DATABASE_URL', 'mysql://x', 'DATABASE_URL'],
    ['JWT_SECRET', 'short', 'JWT_SECRET: must be at least 32 characters'],
    ['ALLOW_SIGNUP', 'maybe', 'ALLOW_SIGNUP'],
    ['PLAN_LIMITS', 'sometimes', 'PLAN_LIMITS'],
    ['CORS_ORIGINS', 'not an origin', 'CORS_ORIGINS'],
    ['TRUST_PROXY', 'lots', 'TRUST_PROXY'],
    ['LOG_LEVEL', 'loud', 'LOG_LEVEL'],
    ['TLS_CERT_FILE', '/etc/hostname', 'TLS_KEY_FILE'],
  ])('rejects %s=%s naming the variable', (name, value, expected) => {
    expect(() => loadConfig({ [name]: value })).toThrow(expected)
  })

  it('reads booleans in any case and spelling it lists', () => {
    for (const [value, want] of [['TRUE', true], [' Off ', false], ['Yes', true], ['0', false]] as const) expect(loadConfig({ ALLOW_SIGNUP: value }).allowSignup).toBe(want)
    expect(() => loadConfig({ ALLOW_SIGNUP: 'maybe' })).toThrow('ALLOW_SIGNUP: expected true or false (also 1/0, yes/no, on/off; any case)')
    for (const [value, hops] of [['TRUE', 1], ['yes', 1], ['Off', 0], ['2', 2]] as const) expect(loadConfig({ TRUST_PROXY: value }).trustProxyHops).toBe(hops)
    expect([loadConfig({ PLAN_LIMITS: 'OFF' }).planLimits, loadConfig({ PLAN_LIMITS: 'false' }).planLimits, loadConfig({ PLAN_LIMITS: 'on' }).planLimits]).toEqual([false, false, true])
  })

  it('treats an empty value as unset, so the default applies', () => {
    const config = loadConfig({ PORT: '', LOG_LEVEL: ' ', ALLOW_SIGNUP: '', DATABASE_URL: '' })
    expect(config.port).toBe(3000)
    expect(config.logLevel).toBe('info')
    expect(config.allowSignup).toBe(true)
    expect(config.database.url).toBeUndefined()
  })

  it('checks that the TLS files can be read', () => {
    expect(() => loadConfig({ TLS_CERT_FILE: '/nonexistent/cert.pem', TLS_KEY_FILE: '/nonexistent/key.pem' })).toThrow(
      'TLS_CERT_FILE: cannot read /nonexistent/cert.pem',
    )
  })

  it('never echoes a secret value in the error', () => {
    try {
      loadConfig({ JWT_SECRET: 'hunter2-too-short' })
      expect.unreachable()
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2')
    }
  })

  it('takes CORS origins as browsers send them, and refuses entries that could never match one', () => {
    expect(loadConfig({ CORS_ORIGINS: 'https://App.Example.com, https://b.example.com:443, http://c.example:80/, http://localhost:5173, *' }).corsOrigins).toEqual([
      'https://app.example.com',
      'https://b.example.com',
      'http://c.example',
      'http://localhost:5173',
      '*',
    ])
    for (const entry of ['https://c.example.com?x', 'https://user@d.example.com', 'https://e.example.com/app', 'https://f.example.com#x', 'ftp://g.example.com']) {
      expect(() => loadConfig({ CORS_ORIGINS: `https://ok.example, ${entry}` }), entry).toThrow(`CORS_ORIGINS: "${entry}" is not an origin`)
    }
  })

  it('parses lists, booleans and proxy hops', () => {
    const config = loadConfig({
      CORS_ORIGINS: 'https://a.example, http://localhost:5173',
      ALLOW_SIGNUP: 'false',
      PLAN_LIMITS: 'off',
      TRUST_PROXY: '2',
    })
    expect(config.corsOrigins).toEqual(['https://a.example', 'http://localhost:5173'])
    expect(config.allowSignup).toBe(false)
    expect(config.planLimits).toBe(false)
    expect(config.trustProxyHops).toBe(2)
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxyHops).toBe(1)
  })

  it('stops the real process at start-up with a message naming the variable', async () => {
    const missing = spawnCollector({ NODE_ENV: 'production', JWT_SECRET: SECRET })
    expect((await missing.exited).code).toBe(78)
    expect(missing.output()).toContain('DATABASE_URL: is required when NODE_ENV=production')
    const malformed = spawnCollector({ PORT: 'abc' })
    expect((await malformed.exited).code).toBe(78)
    expect(malformed.output()).toMatch(/PORT: .*\(got "abc"\)/)
  })

  it('says it is the database, and where, when DATABASE_URL cannot be reached (never the password)', async () => {
    const port = await freePort() // nothing listens there
    const down = spawnCollector({ DATABASE_URL: `postgres://llmguard:s3cret-pw@127.0.0.1:${port}/llmguard`, PORT: String(await freePort()) })
    expect((await down.exited).code).toBe(1)
    expect(down.output()).toContain(`llmguard-collector: failed to start: cannot reach the database at 127.0.0.1:${port} (DATABASE_URL): connect ECONNREFUSED`)
    expect(down.output()).not.toContain('s3cret-pw')
  })

  it('gives up on a DATABASE_URL server that is not PostgreSQL, instead of reconnecting forever', async () => {
    // an HTTP port by mistake: every connection is answered with a 400 and closed
    let connections = 0
    const notPostgres = createServer((socket) => {
      connections++
      socket.on('error', () => undefined)
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n')
    })
    await new Promise<void>((resolve) => notPostgres.listen(0, '127.0.0.1', resolve))
    const port = (notPostgres.address() as AddressInfo).port
    try {
      const config = loadConfig({ DATABASE_URL: `postgres://llmguard:s3cret-pw@127.0.0.1:${port}/llmguard`, PORT: '0', LOG_LEVEL: 'silent' })
      const err = await startCollector(config, { databaseAnswerMs: 1_500 }).then(
        () => undefined,
        (e: Error) => e,
      )
      expect(err?.message).toBe(`the database at 127.0.0.1:${port} (DATABASE_URL) did not answer as PostgreSQL within 2 s: is it a PostgreSQL server, and the port its own?`)
      expect(connections).toBeGreaterThan(0)
      // and it stopped trying (once what was under way settled)
      await new Promise((r) => setTimeout(r, 300))
      const after = connections
      await new Promise((r) => setTimeout(r, 500))
      expect(connections).toBe(after)
    } finally {
      notPostgres.close()
    }
  })
})

describe('docs/self-hosting.md', () => {
  it('has a row for every setting the collector reads', () => {
    const doc = readFileSync(new URL('../../../docs/self-hosting.md', import.meta.url), 'utf8')
    const names = Object.keys(envSchema.shape)
    expect(names.length).toBeGreaterThan(20)
    expect(names.filter((name) => !doc.includes(`| \`${name}\` |`))).toEqual([])
  })
})
