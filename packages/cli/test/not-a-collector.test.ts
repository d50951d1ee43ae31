import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import Doctor from '../src/commands/doctor.js'
import Init from '../src/commands/init.js'
import Login from '../src/commands/login.js'
import Metrics from '../src/commands/metrics.js'
import SettingsGet from '../src/commands/settings/get.js'
import Whoami from '../src/commands/whoami.js'
import { writeConfig } from '../src/lib/config.js'
import { run, tempConfigDir } from './helpers.js'

/** Another server on the collector's port: every path answers `status` with `body`. */
async function serve(status: number, contentType: string, body: string): Promise<{ url: string; paths: string[]; server: Server }> {
  const paths: string[] = []
  const server = createServer((req, res) => {
    paths.push(`${req.method} ${req.url}`)
    req.resume()
    res.writeHead(status, { 'content-type': contentType })
    res.end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, paths, server }
}

let html: Awaited<ReturnType<typeof serve>>
let other: Awaited<ReturnType<typeof serve>>
let tmp: ReturnType<typeof tempConfigDir>

beforeAll(async () => {
  html = await serve(200, 'text/html', '<!doctype html><html><body>dev server</body></html>')
  other = await serve(200, 'application/json', JSON.stringify({ hello: 'world' }))
})
afterAll(async () => {
  for (const s of [html, other]) await new Promise((resolve) => s?.server.close(resolve))
})
beforeEach(() => {
  tmp = tempConfigDir()
})
afterEach(() => tmp.cleanup())

const refused = (url: string, detail = '') => `Error: ${url} answered without an LLMGuard body${detail}: is it the collector's URL? [NOT_A_COLLECTOR]\n`

describe('a URL that answers 200 but is not a collector', () => {
  it('init stops at the health check, before any account is made', async () => {
    for (const s of [html, other]) {
      const r = await run(Init, ['--collector', s.url, '--email', 'a@example.com', '--password', 'a password 123', '--signup', '--no-env'])
      expect(r.exitCode).toBe(1)
      expect(r.stderr).toBe(refused(s.url, s === other ? ' (status: Invalid input: expected "ok")' : ''))
      expect(s.paths.filter((p) => p.startsWith('POST'))).toEqual([])
    }
  })

  it('login says so instead of crashing on the missing token', async () => {
    for (const s of [html, other]) {
      const r = await run<any>(Login, ['--collector', s.url, '--email', 'a@example.com', '--password', 'a password 123', '--json'])
      expect(r.exitCode).toBe(1)
      expect(r.json.error.code).toBe('NOT_A_COLLECTOR')
      expect(r.json.error.message).toContain(`${s.url} answered without an LLMGuard body`)
    }
  })

  it('doctor fails its collector check, naming the URL', async () => {
    for (const s of [html, other]) {
      const r = await run<any>(Doctor, ['--collector', s.url, '--json'])
      expect(r.json.ok).toBe(false)
      const check = r.json.checks.find((ch: any) => ch.name === 'collector')
      expect(check).toMatchObject({ status: 'fail' })
      expect(check.detail).toContain(`${s.url} answered without an LLMGuard body`)
    }
  })

  it('metrics, whoami and settings get refuse the answer instead of printing undefined', async () => {
    for (const s of [html, other]) {
      writeConfig({ collector: s.url, accessToken: 'a', refreshToken: 'r', accessTokenExpiresAt: Date.now() + 3_600_000, projectId: '3f0c1a52-0d0e-4b8e-9d6f-0123456789ab' }, join(tmp.dir, 'config.json'))
      for (const cmd of [Metrics, Whoami, SettingsGet]) {
        const r = await run(cmd, [])
        expect(r.exitCode).toBe(1)
        expect(r.stdout).toBe('')
        expect(r.stderr).toMatch(new RegExp(`^Error: ${s.url.replace(/[.]/g, '\\.')} answered without an LLMGuard body.*\\[NOT_A_COLLECTOR\\]\\n$`))
      }
    }
  })

  it("doctor still reads a collector's 503 readiness", async () => {
    const notReady = await serve(503, 'application/json', JSON.stringify({ status: 'not_ready', database: 'down', migrations: 'pending', version: '9.9.9' }))
    try {
      const r = await run<any>(Doctor, ['--collector', notReady.url, '--json'])
      expect(r.json.checks.find((ch: any) => ch.name === 'collector')).toEqual({ name: 'collector', status: 'fail', detail: `${notReady.url} not_ready, version 9.9.9 (database down, migrations pending)` })
    } finally {
      await new Promise((resolve) => notReady.server.close(resolve))
    }
  })
})
