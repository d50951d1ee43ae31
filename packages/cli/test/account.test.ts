import { PassThrough } from 'node:stream'
import { createHmac, randomUUID } from 'node:crypto'
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { existsSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { execFile, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LLMGuard } from '@llmguard/sdk'
import type { LogResult, Page, Project, User } from '@llmguard/shared'
import { startTestCollector, type TestCollector } from '../../collector/test/helpers/collector.js'
import { createProject, setupProject, signUp } from '../../collector/test/helpers/accounts.js'
import Init from '../src/commands/init.js'
import Login from '../src/commands/login.js'
import Logout from '../src/commands/logout.js'
import Whoami from '../src/commands/whoami.js'
import ProjectsList from '../src/commands/projects/list.js'
import ProjectsCreate from '../src/commands/projects/create.js'
import ProjectsDelete from '../src/commands/projects/delete.js'
import ProjectsUse from '../src/commands/projects/use.js'
import KeysList from '../src/commands/keys/list.js'
import KeysCreate from '../src/commands/keys/create.js'
import KeysRotate from '../src/commands/keys/rotate.js'
import KeysRevoke from '../src/commands/keys/revoke.js'
import LogsSearch from '../src/commands/logs/search.js'
import LogsShow from '../src/commands/logs/show.js'
import IncidentsList from '../src/commands/incidents/list.js'
import IncidentsShow from '../src/commands/incidents/show.js'
import IncidentsAck from '../src/commands/incidents/ack.js'
import IncidentsResolve from '../src/commands/incidents/resolve.js'
import IncidentsRca from '../src/commands/incidents/rca.js'
import RemediateApply from '../src/commands/remediate/apply.js'
import RemediateList from '../src/commands/remediate/list.js'
import RemediateRollback from '../src/commands/remediate/rollback.js'
import { readConfig, writeConfig } from '../src/lib/config.js'
import { Session } from '../src/lib/session.js'
import { run, tempConfigDir } from './helpers.js'

let collector: TestCollector
let tmp: ReturnType<typeof tempConfigDir>
const configFile = () => join(tmp.dir, 'config.json')

beforeAll(async () => {
  collector = await startTestCollector()
  tmp = tempConfigDir()
})
afterAll(async () => {
  await collector?.close()
  tmp?.cleanup()
})

/** An HS256 access token signed with the collector's secret that expired a minute ago. */
function expiredAccessToken(user: { id: string; email: string }): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ email: user.email, role: 'user', sub: user.id, iss: 'llmguard', aud: 'llmguard-api', iat: now - 960, exp: now - 60 })}`
  return `${body}.${createHmac('sha256', collector.secrets.jwtSecret).update(body).digest('base64url')}`
}

describe('init, unattended', () => {
  it('signs up, creates a project and a key, writes .env without clobbering it; an SDK record then shows up in logs search', async () => {
    const envFile = join(tmp.dir, '.env')
    writeFileSync(envFile, '# my app\nOPENAI_API_KEY=sk-keep-me\nLLMGUARD_ENDPOINT=http://old.example\n')
    const email = `init-${randomUUID()}@example.com`
    const r = await run<any>(Init, ['--collector', collector.url, '--email', email, '--password', 'correct horse battery', '--signup', '--project-name', 'my-app', '--dotenv', envFile, '--json'])
    expect(r.exitCode).toBe(0)
    expect(r.json).toMatchObject({ collector: collector.url, user: { email, created: true }, project: { name: 'my-app', created: true }, envFile })
    expect(r.json.key.key).toBeUndefined()
    const env = readFileSync(envFile, 'utf8')
    expect(env).toContain('# my app\nOPENAI_API_KEY=sk-keep-me\n')
    expect(env).toContain(`LLMGUARD_ENDPOINT=${collector.url}\n`)
    expect(env).not.toContain('old.example')
    const apiKey = /^LLMGUARD_API_KEY=(lg_\S+)$/m.exec(env)?.[1]
    expect(apiKey).toMatch(/^lg_/)
    expect(apiKey!.endsWith(r.json.key.last4)).toBe(true)

    // the session and the default project are remembered, owner-only
    const cfg = readConfig(configFile())
    expect(cfg).toMatchObject({ collector: collector.url, email, projectId: r.json.project.id })
    expect(statSync(configFile()).mode & 0o777).toBe(0o600)

    const guard = new LLMGuard({ apiKey, endpoint: collector.url, outbox: ':memory:', policy: false, logger: { warn: () => undefined } })
    guard.record({
      prompt: 'what is the refund policy for order 1234? write to jane@example.com',
      response: 'thirty days',
      model: 'gpt-4o-mini',
      latency: 321,
      promptTokens: 40,
      cachedTokens: 8,
      completionTokens: 12,
      reasoningTokens: 5,
      stream: true,
      endpoint: 'chat.completions',
    })
    await guard.shutdown({ timeoutMs: 5_000 })

    const search = await run<Page<LogResult>>(LogsSearch, ['--search', 'refund policy', '--json'])
    expect(search.exitCode).toBe(0)
    expect(search.json.items).toHaveLength(1)
    expect(search.json.items[0]).toMatchObject({ model: 'gpt-4o-mini', latency: 321, response: 'thirty days' })
    const human = await run(LogsSearch, ['--model', 'gpt-4o-mini', '--since', '1h'])
    expect(human.stdout).toMatch(/ID\s+WHEN\s+MODEL/)
    expect(human.stdout).toContain('what is the refund policy')
    expect(human.stdout).toContain('1–1 of 1')

    const show = await run<any>(LogsShow, [search.json.items[0].id])
    expect(show.stdout).toMatch(/model\s+gpt-4o-mini/)
    expect(show.stdout).toContain('thirty days')
    const showJson = await run<any>(LogsShow, [search.json.items[0].id, '--json'])
    expect(showJson.json).toMatchObject({ id: search.json.items[0].id, projectId: r.json.project.id })
    // every stored field, as it says: arrival, the token split, streaming, why it is risky
    expect(show.stdout).toMatch(new RegExp(`received\\s+${showJson.json.createdAt}`))
    expect(show.stdout).toContain('prompt 40, 8 cached; completion 12, 5 reasoning')
    expect(show.stdout).toMatch(/endpoint\s+chat\.completions, streamed/)
    expect(showJson.json.riskReasons.length).toBeGreaterThan(0)
    for (const reason of showJson.json.riskReasons) expect(show.stdout).toContain(`(${reason.detail})`)

    // a second init on the same .env (log in this time, as no --signup/--no-signup is given) updates in place
    const again = await run<any>(Init, ['--collector', collector.url, '--email', email, '--password', 'correct horse battery', '--dotenv', envFile])
    expect(again.exitCode).toBe(0)
    expect(again.stdout).toContain('logged in as')
    expect(again.stdout).toContain('LLMGUARD_API_KEY updated')
    // and says how the app gets the values: the SDK reads the environment, not the file
    expect(again.stdout).toContain(`node --env-file=${envFile} app.js`)
    // init for a project name the account has already reuses that project, not another of the name
    const reused = await run<any>(Init, ['--collector', collector.url, '--email', email, '--password', 'correct horse battery', '--project-name', 'my-app', '--no-env', '--json'])
    expect(reused.json.project).toEqual({ id: r.json.project.id, name: 'my-app', created: false })
    const projects = await collector.client.get<{ items: { name: string }[] }>('/v1/projects', { token: readConfig(configFile()).accessToken })
    expect(projects.items.filter((p) => p.name === 'my-app')).toHaveLength(1)
    const env2 = readFileSync(envFile, 'utf8')
    expect(env2.match(/LLMGUARD_API_KEY=/g)).toHaveLength(1)
    expect(env2).toContain('OPENAI_API_KEY=sk-keep-me')

    // a mistyped password too short to sign up with is still called what it most likely is
    const short = await run(Init, ['--collector', collector.url, '--email', email, '--password', 'short', '--no-env'])
    expect(short.exitCode).toBe(1)
    expect(short.stderr).toBe(`Error: login failed for ${email}: wrong password, or no such account (and to sign up, the password must be at least 8 characters) [INVALID_CREDENTIALS]\n`)
  })

  it('--dotenv that cannot be written is a usage error before anything is created', async () => {
    const { user, project } = await setupProject(collector)
    const keys = async () => (await collector.client.get<unknown[]>(`/v1/projects/${project.id}/keys`, { token: user.accessToken })).length
    const before = await keys()
    const args = ['--collector', collector.url, '--email', user.email, '--password', user.password, '--no-signup', '--project', project.id]
    const missingDir = join(tmp.dir, 'no-such-dir', '.env')
    const r = await run(Init, [...args, '--dotenv', missingDir])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toBe(`Error: --dotenv ${missingDir}: the directory ${join(tmp.dir, 'no-such-dir')} does not exist (or --no-env to print the values instead)\n`)
    const dir = await run(Init, [...args, '--dotenv', tmp.dir])
    expect(dir.exitCode).toBe(2)
    expect(dir.stderr).toContain(`--dotenv ${tmp.dir}: is a directory`)
    expect(await keys()).toBe(before)
  })

  it('prints the new key when the .env write fails after all, and gives it in --json with --no-env', async () => {
    const { user, project } = await setupProject(collector)
    const args = ['--collector', collector.url, '--email', user.email, '--password', user.password, '--no-signup', '--project', project.id]
    // a link to a file in a missing directory: passes the check up front (its directory exists), then fails the write
    const link = join(tmp.dir, 'dangling.env')
    symlinkSync(join(tmp.dir, 'gone', 'target.env'), link)
    const r = await run(Init, [...args, '--dotenv', link])
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/^Error: could not write .*dangling\.env: ENOENT.* \[ENV_WRITE_FAILED\]\n$/)
    const printed = /^ {2}LLMGUARD_API_KEY=(lg_\S+)$/m.exec(r.stdout)?.[1]
    expect(printed).toMatch(/^lg_/)
    const asJson = await run<any>(Init, [...args, '--dotenv', link, '--json'])
    expect(asJson.exitCode).toBe(1)
    expect(JSON.parse(asJson.stdout).error).toMatchObject({ code: 'ENV_WRITE_FAILED', details: { LLMGUARD_API_KEY: expect.stringMatching(/^lg_/), LLMGUARD_ENDPOINT: collector.url } })

    const noEnv = await run<any>(Init, [...args, '--no-env', '--json'])
    expect(noEnv.exitCode).toBe(0)
    expect(noEnv.json.envFile).toBeNull()
    const key = noEnv.json.key.key as string
    expect(key.endsWith(noEnv.json.key.last4)).toBe(true)
    // each key printed is a working key of the project
    for (const k of [printed!, key, JSON.parse(asJson.stdout).error.details.LLMGUARD_API_KEY]) {
      const stored = await collector.client.post<{ id: string }>('/v1/llm/requests', { prompt: 'key check', model: 'gpt-4o-mini', latency: 1 }, { token: k })
      expect(stored.id).toBeTruthy()
    }
  })

  it('a malformed --project is refused before the account is signed up, so running init again is no CONFLICT', async () => {
    const email = `u-${randomUUID()}@example.com`
    const args = ['--collector', collector.url, '--email', email, '--password', 'correct horse battery', '--signup', '--no-env']
    const bad = await run(Init, [...args, '--project', 'not-a-uuid'])
    expect(bad.exitCode).toBe(2)
    expect(bad.stderr).toBe('Error: --project: not a project id: "not-a-uuid" (ids are whole UUIDs, 36 characters)\n')
    const again = await run<any>(Init, [...args, '--json'])
    expect(again.exitCode).toBe(0)
    expect(again.json.user).toMatchObject({ email, created: true })
  })

  it('on a terminal, --project-name is not asked for again; without it, the name is asked', async () => {
    const stdin = Object.getOwnPropertyDescriptor(process, 'stdin')!
    const stderrTty = process.stderr.isTTY
    const initOnTerminal = async (extra: string[], typed: string | undefined) => {
      const terminal = Object.assign(new PassThrough(), { isTTY: true })
      Object.defineProperty(process, 'stdin', { value: terminal, configurable: true })
      process.stderr.isTTY = true
      try {
        const args = ['--collector', collector.url, '--email', `u-${randomUUID()}@example.com`, '--password', 'correct horse battery', '--signup', '--no-env', '--json', ...extra]
        const running = run<any>(Init, args)
        await new Promise((r) => setTimeout(r, 500))
        if (typed !== undefined) terminal.write(`${typed}\n`)
        // a prompt still waiting gets end of input (a usage error) rather than hanging the test
        setTimeout(() => terminal.end(), 1500)
        return await running
      } finally {
        Object.defineProperty(process, 'stdin', stdin)
        process.stderr.isTTY = stderrTty
      }
    }
    const given = await initOnTerminal(['--project-name', 'named-by-flag'], undefined)
    expect(given.exitCode).toBe(0)
    expect(given.stderr).not.toContain('Project name')
    expect(given.json.project).toMatchObject({ name: 'named-by-flag', created: true })
    const asked = await initOnTerminal([], 'typed-name')
    expect(asked.exitCode).toBe(0)
    expect(asked.stderr).toContain('Project name (default): ')
    expect(asked.json.project).toMatchObject({ name: 'typed-name', created: true })
  })

  it('wrong password of an existing account is one clear error', async () => {
    const user = await signUp(collector)
    const r = await run(Init, ['--collector', collector.url, '--email', user.email, '--password', 'not the password', '--no-env'])
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toBe(`Error: wrong password for ${user.email} [INVALID_CREDENTIALS]\n`)
  })
})

describe('session', () => {
  it('login, whoami (human and --json), logout', async () => {
    const user = await signUp(collector)
    const login = await run<any>(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password, '--json'])
    expect(login.json).toMatchObject({ collector: collector.url, user: { id: user.id, email: user.email } })
    const who = await run(Whoami, [])
    expect(who.stdout).toMatch(new RegExp(`email\\s+${user.email}`))
    expect(who.stdout).toMatch(/role\s+user/)
    expect((await run<any>(Whoami, ['--json'])).json).toMatchObject({ user: { id: user.id }, collector: collector.url })

    const out = await run(Logout, [])
    expect(out.stdout).toBe('logged out\n')
    expect(readConfig(configFile()).refreshToken).toBeUndefined()
    const after = await run(Whoami, [])
    expect(after.exitCode).toBe(1)
    expect(after.stderr).toContain('not logged in: run `llmguard login`')
  })

  it("login makes an account's only project the default, so project commands work without --project; with several, it leaves the choice", async () => {
    const { user, project } = await setupProject(collector)
    writeConfig({}, configFile())
    const login = await run<any>(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
    expect(login.exitCode).toBe(0)
    expect(login.stdout).toContain(`default project: demo (${project.id})\n`)
    expect(readConfig(configFile()).projectId).toBe(project.id)
    const search = await run<any>(LogsSearch, ['--json'])
    expect(search.exitCode).toBe(0)
    expect(search.json).toMatchObject({ items: [], total: 0 })

    // logging in again keeps it, and says which it is
    const again = await run<any>(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password, '--json'])
    expect(again.json).toMatchObject({ user: { id: user.id }, project: { id: project.id, name: 'demo' } })

    // a second project: nothing is chosen for the user
    const two = await signUp(collector)
    await createProject(collector, two, 'one')
    await createProject(collector, two, 'two')
    const login2 = await run<any>(Login, ['--collector', collector.url, '--email', two.email, '--password', two.password])
    expect(login2.exitCode).toBe(0)
    expect(login2.stdout).toContain('choose a default project with `llmguard projects use ID`')
    expect(readConfig(configFile()).projectId).toBeUndefined()
    const json2 = await run<any>(Login, ['--collector', collector.url, '--email', two.email, '--password', two.password, '--json'])
    expect(json2.json.project).toBeUndefined()
  })

  it('logout revokes the session at the collector it belongs to, whatever other collector is named; that one is sent nothing', async () => {
    // a server that answers every request, as a collector that is not the session's might: it
    // must never see the refresh token
    const seen: string[] = []
    const other = createHttpServer((req, res) => {
      let body = ''
      req.on('data', (d) => (body += d))
      req.on('end', () => {
        seen.push(`${req.method} ${req.url} ${body}`)
        res.writeHead(204).end()
      })
    })
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve))
    const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`
    try {
      const user = await signUp(collector)
      await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
      let { refreshToken } = readConfig(configFile())
      const named = await run<any>(Logout, ['--collector', otherUrl, '--json'])
      expect([named.exitCode, named.json]).toEqual([0, { loggedOut: true, revoked: true }])
      await expect(collector.client.post('/v1/auth/refresh', { refreshToken })).rejects.toMatchObject({ status: 401 })
      expect(readConfig(configFile()).refreshToken).toBeUndefined()

      // an app's LLMGUARD_ENDPOINT in the environment (a Docker-internal name, say) the same
      await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
      ;({ refreshToken } = readConfig(configFile()))
      process.env.LLMGUARD_ENDPOINT = otherUrl
      try {
        const fromEnv = await run(Logout, [])
        expect(fromEnv.exitCode).toBe(0)
        expect(fromEnv.stdout).toContain(`the session belongs to ${collector.url}: logging out there, not at ${otherUrl}`)
      } finally {
        delete process.env.LLMGUARD_ENDPOINT
      }
      await expect(collector.client.post('/v1/auth/refresh', { refreshToken })).rejects.toMatchObject({ status: 401 })
      expect(seen).toEqual([])

      // one that is not even a URL (a compose service name) is never used, so no reason to refuse
      await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
      process.env.LLMGUARD_ENDPOINT = 'collector:3000'
      try {
        expect((await run<any>(Logout, ['--json'])).json).toEqual({ loggedOut: true, revoked: true })
      } finally {
        delete process.env.LLMGUARD_ENDPOINT
      }
      expect(readConfig(configFile()).refreshToken).toBeUndefined()

      // its own collector, named or not: revoked there, for real
      await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
      ;({ refreshToken } = readConfig(configFile()))
      const out = await run<any>(Logout, ['--collector', `${collector.url}/`, '--json'])
      expect(out.json).toEqual({ loggedOut: true, revoked: true })
      await expect(collector.client.post('/v1/auth/refresh', { refreshToken })).rejects.toMatchObject({ status: 401 })
      expect(seen).toEqual([])

      // a collector that cannot be told: forgotten here all the same, and not called revoked
      await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
      writeConfig({ ...readConfig(configFile()), collector: 'http://127.0.0.1:9' }, configFile())
      const unreachable = await run<any>(Logout, ['--json'])
      expect(unreachable.json).toEqual({ loggedOut: true, revoked: false })
      expect(readConfig(configFile()).refreshToken).toBeUndefined()
    } finally {
      await new Promise((resolve) => other.close(resolve))
    }
  })

  it('an expired access token is refreshed transparently and the rotated refresh token stored', async () => {
    const user = await signUp(collector)
    await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
    const before = readConfig(configFile())
    // the collector must see the expired token (TOKEN_EXPIRED), not the CLI's own expiry check
    const expired = expiredAccessToken(user)
    writeConfig({ ...before, accessToken: expired, accessTokenExpiresAt: Date.now() + 600_000 }, configFile())
    const who = await run<any>(Whoami, ['--json'])
    expect(who.exitCode).toBe(0)
    expect(who.json.user.email).toBe(user.email)
    const after = readConfig(configFile())
    expect(after.refreshToken).not.toBe(before.refreshToken)
    expect(after.accessToken).not.toBe(expired)
    // and when the CLI knows the token has run out, it refreshes before asking
    writeConfig({ ...after, accessTokenExpiresAt: Date.now() - 1 }, configFile())
    expect((await run(Whoami, [])).exitCode).toBe(0)
    expect(readConfig(configFile()).refreshToken).not.toBe(after.refreshToken)
  })

  it('a revoked session asks to log in again', async () => {
    const user = await signUp(collector)
    await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
    const cfg = readConfig(configFile())
    await collector.client.post('/v1/auth/logout', { refreshToken: cfg.refreshToken })
    writeConfig({ ...cfg, accessToken: expiredAccessToken(user) }, configFile())
    const r = await run(Whoami, [])
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/^Error: your session has ended \(.+\): log in again with `llmguard login` \[SESSION_EXPIRED\]\n$/)
    const j = await run<any>(Whoami, ['--json'])
    expect(j.json.error.code).toBe('NOT_LOGGED_IN')
  })

  it('a session refused while its access token has time left (logged out elsewhere) asks to log in again', async () => {
    const user = await signUp(collector)
    await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
    await collector.client.post('/v1/auth/logout', { refreshToken: readConfig(configFile()).refreshToken })
    const r = await run(Whoami, [])
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/^Error: your session has ended \(.+\): log in again with `llmguard login` \[SESSION_EXPIRED\]\n$/)
  })

  it('an access token the collector refuses is refreshed once, and the call goes through', async () => {
    const user = await signUp(collector)
    await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
    const cfg = readConfig(configFile())
    writeConfig({ ...cfg, accessToken: 'not-a-token', accessTokenExpiresAt: Date.now() + 600_000 }, configFile())
    const who = await run<any>(Whoami, ['--json'])
    expect(who.exitCode).toBe(0)
    expect(who.json.user.email).toBe(user.email)
    expect(readConfig(configFile()).refreshToken).not.toBe(cfg.refreshToken)
  })

  it('processes refreshing one session at once take turns: one refreshes, the rest use its tokens, none ends the session', async () => {
    const user = await signUp(collector)
    await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
    const before = readConfig(configFile())
    writeConfig({ ...before, accessTokenExpiresAt: Date.now() - 1 }, configFile())
    // a Session per process: each has only the lock file in common with the others
    const sessions = Array.from({ length: 4 }, () => new Session(collector.url, configFile()))
    try {
      const results = await Promise.allSettled(sessions.map((s) => s.get<User>('/v1/auth/me')))
      expect(results.map((r) => (r.status === 'fulfilled' ? r.value.email : String(r.reason)))).toEqual(Array(4).fill(user.email))
    } finally {
      await Promise.all(sessions.map((s) => s.close()))
    }
    expect(readConfig(configFile()).refreshToken).not.toBe(before.refreshToken)
    expect(existsSync(`${configFile()}.refresh-lock`)).toBe(false)
    expect((await run(Whoami, [])).exitCode).toBe(0)
  })

  it('a refresh lock left by a process that died is taken over', async () => {
    const user = await signUp(collector)
    await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
    writeConfig({ ...readConfig(configFile()), accessTokenExpiresAt: Date.now() - 1 }, configFile())
    const dead = spawnSync(process.execPath, ['-e', '']).pid!
    writeFileSync(`${configFile()}.refresh-lock`, JSON.stringify({ host: hostname(), ns: readlinkSync('/proc/self/ns/pid'), pid: dead, nonce: 'x' }))
    const started = Date.now()
    expect((await run(Whoami, [])).exitCode).toBe(0)
    // taken over because its owner is gone, not waited out (the lock is new: that takes 20 s)
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(existsSync(`${configFile()}.refresh-lock`)).toBe(false)
  })

  it("another host's refresh lock is waited for, not taken over by its pid; an old one is", async () => {
    const user = await signUp(collector)
    await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
    const before = readConfig(configFile())
    writeConfig({ ...before, accessTokenExpiresAt: Date.now() - 1 }, configFile())
    const lock = `${configFile()}.refresh-lock`
    const dead = spawnSync(process.execPath, ['-e', '']).pid!
    // the same config on a disk another host shares: a pid of that host means nothing here
    writeFileSync(lock, JSON.stringify({ host: `not-${hostname()}`, pid: dead, nonce: 'x' }))
    const session = new Session(collector.url, configFile())
    try {
      const who = session.get<User>('/v1/auth/me')
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect(readConfig(configFile()).refreshToken).toBe(before.refreshToken)
      // released by its owner: the waiter goes on
      rmSync(lock)
      expect((await who).email).toBe(user.email)
      expect(readConfig(configFile()).refreshToken).not.toBe(before.refreshToken)

      // an abandoned one (older than any refresh) is taken over whoever holds it
      writeConfig({ ...readConfig(configFile()), accessTokenExpiresAt: Date.now() - 1 }, configFile())
      writeFileSync(lock, JSON.stringify({ host: `not-${hostname()}`, pid: 1, nonce: 'y' }))
      const old = new Date(Date.now() - 60_000)
      utimesSync(lock, old, old)
      expect((await session.get<User>('/v1/auth/me')).email).toBe(user.email)
      expect(existsSync(lock)).toBe(false)
    } finally {
      await session.close()
    }
  })

  it('an unreachable collector is named with its URL', async () => {
    const r = await run(Login, ['--collector', 'http://127.0.0.1:9', '--email', 'a@example.com', '--password', 'whatever1'])
    expect(r.exitCode).toBe(69)
    expect(r.stderr).toMatch(/^Error: collector at http:\/\/127\.0\.0\.1:9 is unreachable: .+ \[UNREACHABLE\]\n$/)
    const j = await run<any>(Init, ['--collector', 'http://127.0.0.1:9', '--email', 'a@example.com', '--password', 'whatever1', '--json'])
    expect(j.exitCode).toBe(69)
    expect(j.json.error).toMatchObject({ code: 'UNREACHABLE' })
    expect(j.json.error.message).toContain('http://127.0.0.1:9')
  })
})

describe('projects and keys', () => {
  it('create, use, list, keys create/list/rotate/revoke, delete', async () => {
    const user = await signUp(collector)
    await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
    const created = await run<any>(ProjectsCreate, ['shop', '--use', '--json'])
    expect(created.json).toMatchObject({ name: 'shop', userId: user.id })
    const id = created.json.id
    const list = await run(ProjectsList, [])
    expect(list.stdout).toMatch(new RegExp(`\\*\\s+${id}\\s+shop`))
    expect((await run<any>(ProjectsList, ['--json'])).json).toMatchObject({ items: [{ id }], total: 1, page: 1 })

    const key = await run<any>(KeysCreate, ['--name', 'prod', '--json'])
    expect(key.json.key).toMatch(/^lg_/)
    const keyHuman = await run(KeysCreate, [])
    expect(keyHuman.stdout).toMatch(/Store it now, it is not shown again:\n\n {2}lg_/)
    const keys = await run(KeysList, [])
    expect(keys.stdout).toMatch(/ID\s+NAME\s+KEY\s+STATUS\s+CREATED/)
    expect(keys.stdout).toContain(`lg_…${key.json.last4}`)
    const rotated = await run<any>(KeysRotate, [key.json.id, '--json'])
    expect(rotated.json.id).not.toBe(key.json.id)
    // in human form: the key once, and where the old key's queued records went
    const again = await run(KeysRotate, [rotated.json.id])
    expect(again.stdout).toMatch(/^ {2}lg_\S+$/m)
    expect(again.stdout).toContain('ship those with `llmguard outbox flush --outbox FILE --api-key <new key>`')
    const third = /its replacement (\S+) \(shown once\)/.exec(again.stdout)![1]!
    const revoked = await run<any>(KeysRevoke, [third, '--project', id, '--json'])
    expect(revoked.json).toEqual({ id: third, revoked: true })
    const keysJson = await run<any>(KeysList, ['--json'])
    expect(keysJson.json.items.filter((k: any) => k.revokedAt === null)).toHaveLength(1)
    expect((await run(KeysList, [])).stdout).toContain('revoked')
    // a list that does not show everything says so, as every paged list does
    expect((await run(KeysList, ['--limit', '1'])).stdout).toMatch(new RegExp(`page 1, 1 of ${keysJson.json.total}\\n$`))

    const other = await run<any>(ProjectsCreate, ['other', '--json'])
    expect((await run(ProjectsUse, [other.json.id])).stdout).toContain(`default project: other (${other.json.id})`)
    const refused = await run(ProjectsDelete, [id])
    expect(refused.exitCode).toBe(2)
    expect(refused.stderr).toContain('refusing without --yes')
    // on a terminal it asks, naming the project; "n" is an answer (exit 0), not an error
    const stdin = Object.getOwnPropertyDescriptor(process, 'stdin')!
    const stderrTty = process.stderr.isTTY
    const terminal = Object.assign(new PassThrough(), { isTTY: true })
    Object.defineProperty(process, 'stdin', { value: terminal, configurable: true })
    process.stderr.isTTY = true
    try {
      const asked = run<any>(ProjectsDelete, [id])
      await new Promise((r) => setTimeout(r, 200))
      terminal.write('n\n')
      const declined = await asked
      expect(declined.exitCode).toBe(0)
      expect(declined.stderr).toContain(`Delete project "shop" (${id}) and all its data?`)
      expect(declined.stdout).toBe('not deleted\n')
    } finally {
      Object.defineProperty(process, 'stdin', stdin)
      process.stderr.isTTY = stderrTty
    }
    expect((await run<any>(ProjectsDelete, [id, '--yes', '--json'])).json).toEqual({ id, deleted: true })
    expect((await run<any>(ProjectsList, ['--json'])).json.items.map((p: any) => p.id)).toEqual([other.json.id])
  })

  it('an id argument is that id: empty, blank or malformed is a usage error, never the default project', async () => {
    const user = await signUp(collector)
    await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
    const id = (await run<any>(ProjectsCreate, ['kept', '--use', '--json'])).json.id as string
    for (const bad of ['', '   ', 'not-a-uuid', id.slice(0, 8)]) {
      for (const [cmd, argv] of [[ProjectsDelete, [bad, '--yes']], [ProjectsDelete, [bad, '--yes', '--json']], [ProjectsUse, [bad]]] as const) {
        const r = await run<any>(cmd, [...argv])
        expect(r.exitCode, `${cmd.name} ${JSON.stringify(argv)}`).toBe(2)
        // named as what it is, an argument: not as --project
        const message = `not a project id: "${bad}" (ids are whole UUIDs, 36 characters)`
        if (argv.includes('--json')) expect(r.json.error).toEqual({ code: 'USAGE', message })
        else expect(r.stderr).toBe(`Error: ${message}\n`)
      }
    }
    // the default project is still there, and still the default
    expect((await run<any>(ProjectsList, ['--json'])).json.items.map((p: any) => p.id)).toEqual([id])
    expect(readConfig(configFile()).projectId).toBe(id)
    // every other id argument is checked as an id too, before any request
    const others: [Parameters<typeof run>[0], string[], string][] = [
      [IncidentsShow, [''], 'an incident'],
      [IncidentsAck, [''], 'an incident'],
      [IncidentsResolve, [' '], 'an incident'],
      [IncidentsRca, [''], 'an incident'],
      [RemediateList, [''], 'an incident'],
      [RemediateApply, ['', 'reset_settings'], 'an incident'],
      [RemediateRollback, [''], 'a remediation'],
      [KeysRotate, [''], 'a key'],
      [KeysRevoke, [''], 'a key'],
      [LogsShow, [''], 'a request'],
    ]
    for (const [i, [cmd, argv, kind]] of others.entries()) {
      const r = await run(cmd, argv)
      expect([r.exitCode, r.stderr], `case ${i}`).toEqual([2, `Error: not ${kind} id: "${argv[0]}" (ids are whole UUIDs, 36 characters)\n`])
    }
    expect((await run(IncidentsList, ['--json'])).exitCode).toBe(0)
  })

  it('projects list marks the default project with * and leaves the other rows blank there', async () => {
    const user = await signUp(collector)
    await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
    const first = (await run<any>(ProjectsCreate, ['first', '--json'])).json.id as string
    const chosen = (await run<any>(ProjectsCreate, ['chosen', '--use', '--json'])).json.id as string
    const lines = (await run(ProjectsList, [])).stdout.split('\n')
    expect(lines.find((l) => l.includes(chosen))).toMatch(new RegExp(`^\\* {2}${chosen} +chosen `))
    expect(lines.find((l) => l.includes(first))).toMatch(new RegExp(`^ {3}${first} +first `))
    expect(lines.filter((l) => l.startsWith('-'))).toEqual([])
    // with the default on no row of the page, there is no marker column at all
    const page2 = (await run(ProjectsList, ['--limit', '1', '--page', '2'])).stdout.split('\n')
    expect(page2[0]).toMatch(/^ID +NAME +CREATED$/)
    expect(page2[1]).toMatch(new RegExp(`^${first} +first `))
  })

  it("another user's project is refused with the collector's 403", async () => {
    const stranger = await setupProject(collector)
    const user = await signUp(collector)
    await run(Login, ['--collector', collector.url, '--email', user.email, '--password', user.password])
    const r = await run(KeysList, ['--project', stranger.project.id])
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/^Error: .+ \[FORBIDDEN\]\n$/)
    const j = await run<any>(LogsSearch, ['--project', stranger.project.id, '--json'])
    expect(j.json.error).toMatchObject({ code: 'FORBIDDEN', status: 403 })
  })

  it('invalid flag values are usage errors (exit 2) before any request', async () => {
    const project = randomUUID()
    const cases: [string[], RegExp][] = [
      [['--project', project, '--min-risk', '101'], /--min-risk/],
      [['--project', project, '--min-risk', '60', '--max-risk', '10'], /--min-risk: minRiskScore must not exceed maxRiskScore/],
      [['--project', project, '--since', 'last tuesday'], /--since: expected a duration like 15m/],
      [['--project', project, '--since', '1h', '--until', '2h'], /--since: startDate must be before endDate/],
      [['--project', project, '--status', 'broken'], /Expected --status=broken to be one of: success, error/],
      [['--project', project, '--limit', '500'], /--limit/],
      [['--project', 'not-a-uuid'], /--project: not a project id: "not-a-uuid"/],
      [['--project', project, '--collector', 'nope'], /--collector: not a URL/],
      [['--project', project, '--collector', 'http://localhost:3917?x=1'], /--collector: expected the collector's address without a query or fragment/],
      [['--project', project, '--collector', 'http://localhost:3917/#top'], /--collector: expected the collector's address without a query or fragment/],
      [['--project', project, '--collector', 'http://admin:secretpw@127.0.0.1:1'], /^Error: --collector: the URL holds a user name or password; leave them out/],
      [['--project', project, '--frobnicate'], /Nonexistent flag: --frobnicate/],
    ]
    for (const [argv, message] of cases) {
      const r = await run(LogsSearch, argv)
      expect(r.exitCode, argv.join(' ')).toBe(2)
      expect(r.stderr, argv.join(' ')).toMatch(message)
      expect(r.stderr.trim().split('\n'), argv.join(' ')).toHaveLength(1)
    }
    const j = await run<any>(LogsSearch, ['--project', project, '--since', 'soon', '--json'])
    expect(j.json.error.code).toBe('USAGE')
    // the password in a URL is never echoed
    const creds = await run(LogsSearch, ['--project', project, '--collector', 'http://admin:secretpw@127.0.0.1:1'])
    expect(creds.stderr).not.toContain('secretpw')
  })

  it('takes a --collector URL with spaces around it or a trailing slash as the collector itself', async () => {
    const user = await signUp(collector)
    for (const url of [` ${collector.url} `, `${collector.url}/`]) {
      const r = await run(Login, ['--collector', url, '--email', user.email, '--password', user.password])
      expect([r.exitCode, r.stderr], url).toEqual([0, ''])
    }
  })

  it('a calendar date that does not exist is a usage error, not the day it rolls over to', async () => {
    const project = randomUUID()
    const cases: [string, string, string][] = [
      ['--since', '2025-02-30', '2025-02 has 28 days'],
      ['--until', '2025-04-31T12:00:00Z', '2025-04 has 30 days'],
      ['--start-date', '2023-02-29', '2023-02 has 28 days'],
      ['--since', '2025-13-01', 'months are 01–12'],
      ['--since', '2025-01-00', '2025-01 has 31 days'],
    ]
    for (const [flag, date, why] of cases) {
      const name = flag === '--start-date' ? '--since' : flag
      const r = await run(LogsSearch, ['--project', project, flag, date])
      expect([r.exitCode, r.stderr], date).toEqual([2, `Error: ${name}: there is no such date as ${date.slice(0, 10)} (${why})\n`])
    }
    const incidents = await run(IncidentsList, ['--project', project, '--since', '2025-02-30'])
    expect([incidents.exitCode, incidents.stderr]).toEqual([2, 'Error: --since: there is no such date as 2025-02-30 (2025-02 has 28 days)\n'])
    // a range that ends before it starts names the flags, as logs search does, before any request
    const backwards = await run(IncidentsList, ['--project', project, '--since', '1d', '--until', '2d'])
    expect([backwards.exitCode, backwards.stderr]).toEqual([2, 'Error: --since: startDate must be before endDate\n'])
  })
})

// The README's demo flow: `pnpm seed`, then `pnpm llmguard login` to browse what it made.
const SEED = fileURLToPath(new URL('../../../scripts/seed.mjs', import.meta.url))
const exec = promisify(execFile)

describe('pnpm seed', () => {
  it('seeding twice fills one project; logging in afterwards browses it without --project', async () => {
    writeConfig({}, configFile())
    const email = 'demo@llmguard.local'
    const password = 'demo password 1'
    const seed = () => exec(process.execPath, [SEED, '--url', collector.url, '--email', email, '--password', password, '--records', '40'], { env: { ...process.env, LLMGUARD_ENDPOINT: '' } })
    const first = await seed()
    expect(first.stdout).toMatch(/created project "demo" \(([0-9a-f-]{36})\) and a new API key/)
    expect(first.stdout).toContain(`pnpm llmguard login --collector ${collector.url} --email ${email}`)
    const id = /project "demo" \(([0-9a-f-]{36})\)/.exec(first.stdout)![1]
    const second = await seed()
    expect(second.stdout).toContain(`using the existing project "demo" (${id}) and a new API key`)

    const login = await run<any>(Login, ['--collector', collector.url, '--email', email, '--password', password])
    expect(login.stdout).toContain(`default project: demo (${id})`)
    const projects = await collector.client.get<Page<Project>>('/v1/projects', { token: (await collector.client.post<any>('/v1/auth/login', { email, password })).tokens.accessToken })
    expect(projects.items.map((p) => p.id)).toEqual([id])
    const search = await run<any>(LogsSearch, ['--json', '--limit', '1'])
    expect(search.exitCode).toBe(0)
    expect(search.json.total).toBe(80)
  })
})
