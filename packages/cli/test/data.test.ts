import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { randomUUID } from 'node:crypto'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LLMGuard, SqliteStore } from '@llmguard/sdk'
import type { LogResult } from '@llmguard/shared'
import { copyTemplateDataDir, freePort, startTestCollector, type TestCollector } from '../../collector/test/helpers/collector.js'
import CollectorSeed from '../src/commands/collector/seed.js'
import CollectorStart, { loadCollector } from '../src/commands/collector/start.js'
import Metrics from '../src/commands/metrics.js'
import LogsSearch from '../src/commands/logs/search.js'
import LogsTail from '../src/commands/logs/tail.js'
import IncidentsList from '../src/commands/incidents/list.js'
import IncidentsShow from '../src/commands/incidents/show.js'
import IncidentsAck from '../src/commands/incidents/ack.js'
import IncidentsResolve from '../src/commands/incidents/resolve.js'
import IncidentsRca from '../src/commands/incidents/rca.js'
import SettingsGet from '../src/commands/settings/get.js'
import SettingsSet from '../src/commands/settings/set.js'
import BillingStatus from '../src/commands/billing/status.js'
import BillingUpgrade from '../src/commands/billing/upgrade.js'
import OutboxStatus from '../src/commands/outbox/status.js'
import OutboxFlush from '../src/commands/outbox/flush.js'
import OutboxReplay from '../src/commands/outbox/replay.js'
import Doctor from '../src/commands/doctor.js'
import ProjectsCreate from '../src/commands/projects/create.js'
import RemediateApply from '../src/commands/remediate/apply.js'
import RemediateList from '../src/commands/remediate/list.js'
import RemediateRollback from '../src/commands/remediate/rollback.js'
import { readConfig, writeConfig } from '../src/lib/config.js'
import { defaultOutboxPath } from '../../sdk/src/options.js'
import { run, tempConfigDir } from './helpers.js'

let collector: TestCollector
let tmp: ReturnType<typeof tempConfigDir>
let seed: { projectId: string; apiKey: string; email: string }

beforeAll(async () => {
  collector = await startTestCollector()
  tmp = tempConfigDir()
})
afterAll(async () => {
  await collector?.close()
  tmp?.cleanup()
})

const post = (record: Record<string, unknown>) => collector.client.post('/v1/llm/requests', record, { token: seed.apiKey })


/**
 * Sends `signal` to the listeners added after the first `before` (the command's own): the test
 * runner's must not see it.
 */
function emitToCommand(signal: NodeJS.Signals, before: number): void {
  const others = process.listeners(signal).slice(0, before)
  for (const l of others) process.off(signal, l)
  process.emit(signal)
  for (const l of others) process.on(signal, l)
}
describe('collector seed', () => {
  it('creates the demo account, project, key and records, and (not logged in) switches the CLI to them', async () => {
    const r = await run<any>(CollectorSeed, ['--collector', collector.url, '--records', '300', '--days', '3', '--email', `demo-${randomUUID()}@example.com`, '--json'])
    expect(r.exitCode).toBe(0)
    expect(r.json).toMatchObject({ collector: collector.url, accepted: 300, rejected: 0 })
    seed = r.json
    // no fixed password: a generated one, returned once, that opens the account
    expect(r.json.password).toMatch(/^[A-Za-z0-9_-]{16}$/)
    expect((await collector.client.post<any>('/v1/auth/login', { email: seed.email, password: r.json.password })).user.email).toBe(seed.email)
    expect(readConfig(join(tmp.dir, 'config.json'))).toMatchObject({ projectId: seed.projectId, email: seed.email })
    // seeding again with the same account logs in instead of failing
    const again = await run(CollectorSeed, ['--records', '10', '--email', seed.email])
    expect(again.exitCode).toBe(0)
    expect(again.stdout).toMatch(/records\s+10 stored over 7 days/)
    // into the same demo project: 310 records there now, not a second project called "demo"
    expect(again.stdout).toMatch(new RegExp(`project\\s+demo \\(${seed.projectId}\\)`))
    expect(again.stdout).toContain('You stay logged in as before')
    expect(again.stdout).not.toContain('generated')
  })

  it('without a password and not logged in as it, an existing demo account is a usage error; --password opens it', async () => {
    const email = `demo-${randomUUID()}@example.com`
    const other = tempConfigDir()
    try {
      const first = await run<any>(CollectorSeed, ['--collector', collector.url, '--records', '1', '--email', email])
      expect(first.exitCode).toBe(0)
      const password = /account\s+\S+ \/ (\S+) \(generated: keep it/.exec(first.stdout)?.[1]
      expect(password).toMatch(/^[A-Za-z0-9_-]{16}$/)
      // a CLI logged in as nobody (or as someone else) cannot reuse the account without its password
      const fresh = tempConfigDir()
      try {
        const refused = await run(CollectorSeed, ['--collector', collector.url, '--records', '1', '--email', email])
        expect(refused.exitCode).toBe(2)
        expect(refused.stderr).toContain(`the demo account ${email} already exists: give its password with --password`)
        const opened = await run<any>(CollectorSeed, ['--collector', collector.url, '--records', '1', '--email', email, '--password', password!, '--json'])
        expect(opened.exitCode).toBe(0)
        expect(opened.json).toMatchObject({ email, accepted: 1 })
        expect(opened.json.password).toBeUndefined()
      } finally {
        fresh.cleanup()
      }
    } finally {
      other.cleanup()
    }
  })
})

describe('collector seed, again', () => {
  it('a wrong --password for an existing demo account says so, as init does; seeding again reuses the demo project', async () => {
    const email = `demo-${randomUUID()}@example.com`
    const fresh = tempConfigDir()
    try {
      const args = ['--collector', collector.url, '--records', '1', '--email', email]
      const first = await run<any>(CollectorSeed, [...args, '--password', 'the demo password', '--json'])
      expect(first.exitCode).toBe(0)
      const wrong = await run(CollectorSeed, [...args, '--password', 'not the demo password'])
      expect([wrong.exitCode, wrong.stderr]).toEqual([1, `Error: wrong password for ${email} [INVALID_CREDENTIALS]\n`])
      const wrongJson = await run<any>(CollectorSeed, [...args, '--password', 'not the demo password', '--json'])
      expect(wrongJson.json.error).toEqual({ code: 'INVALID_CREDENTIALS', message: `wrong password for ${email}` })
      // too short to sign up with: maybe mistyped, maybe no account; either way not "already exists"
      const short = await run(CollectorSeed, [...args, '--password', 'short'])
      expect(short.exitCode).toBe(1)
      expect(short.stderr).toBe(`Error: login failed for ${email}: wrong password, or no such account (and to sign up, the password must be at least 8 characters) [INVALID_CREDENTIALS]\n`)

      const again = await run<any>(CollectorSeed, [...args, '--password', 'the demo password', '--json'])
      expect(again.exitCode).toBe(0)
      expect(again.json.projectId).toBe(first.json.projectId)
      const other = await run<any>(CollectorSeed, [...args, '--password', 'the demo password', '--project-name', 'demo two', '--json'])
      expect(other.json.projectId).not.toBe(first.json.projectId)
      const { tokens } = await collector.client.post<any>('/v1/auth/login', { email, password: 'the demo password' })
      const projects = await collector.client.get<{ items: { id: string; name: string }[] }>('/v1/projects', { token: tokens.accessToken })
      expect(projects.items.map((p) => p.name).sort()).toEqual(['demo', 'demo two'])
    } finally {
      fresh.cleanup()
    }
  })
})

describe('metrics', () => {
  it('prints totals, the model table and a daily chart; --json is the API object', async () => {
    const human = await run(Metrics, ['--days', '8'])
    expect(human.exitCode).toBe(0)
    // the seed's 300 and the 10 of seeding again
    expect(human.stdout).toMatch(/requests\s+310\n/)
    expect(human.stdout).toMatch(/MODEL\s+REQUESTS\s+SHARE/)
    expect(human.stdout).toContain('gpt-4o-mini')
    expect(human.stdout).toContain('requests per day (UTC)')
    expect(human.stdout.match(/^\d{4}-\d{2}-\d{2} /gm)).toHaveLength(8)
    expect(human.stdout).toContain('█')
    const json = await run<any>(Metrics, ['--days', '8', '--series', 'cost', '--json'])
    expect(json.json).toMatchObject({ totalRequests: 310 })
    expect(json.json.dailySummary).toHaveLength(8)
    expect((await run(Metrics, ['--days', '0'])).exitCode).toBe(2)
  })

  it('a project without requests has no latency to show, not an average of 0 ms', async () => {
    const empty = (await run<any>(ProjectsCreate, ['empty', '--json'])).json.id as string
    const human = await run(Metrics, ['--project', empty, '--days', '3'])
    expect(human.exitCode).toBe(0)
    expect(human.stdout).toMatch(/requests\s+0\n/)
    expect(human.stdout).toMatch(/latency\s+- \(no requests\)\n/)
    expect(human.stdout).not.toContain('0 ms')
    // the daily latency chart too: a day without requests is not a 0 ms day
    const chart = await run(Metrics, ['--project', empty, '--days', '3', '--series', 'latency'])
    expect(chart.stdout.match(/^\d{4}-\d{2}-\d{2} +-$/gm)).toHaveLength(3)
    // with requests, the average is shown as before
    expect((await run(Metrics, ['--days', '8'])).stdout).toMatch(/latency\s+avg \d+ ms · p50 \d+ ms/)
  })
})

describe('logs', () => {
  it('search by risk and status; tail follows new records', async () => {
    const risky = await run<any>(LogsSearch, ['--min-risk', '20', '--sort-by', 'riskScore', '--limit', '5', '--json'])
    expect(risky.json.items.length).toBeGreaterThan(0)
    expect(risky.json.items.every((r: LogResult) => r.riskScore >= 20)).toBe(true)
    const errors = await run<any>(LogsSearch, ['--status', 'error', '--json'])
    expect(errors.json.items.every((r: LogResult) => r.status === 'error')).toBe(true)

    const tail = run(LogsTail, ['--interval', '1', '--lines', '2', '--count', '3'])
    await new Promise((r) => setTimeout(r, 300))
    await post({ prompt: 'tail me one', model: 'text-embedding-3-small', latency: 10 })
    // a call made two hours ago, shipped only now (an SDK whose collector was out of reach)
    await post({ prompt: 'tail me late', model: 'gpt-4o', latency: 12, timestamp: new Date(Date.now() - 7_200_000).toISOString() })
    await post({ prompt: 'tail me two', model: 'gpt-4o', latency: 11 })
    const out = await tail
    expect(out.exitCode).toBe(0)
    const lines = out.stdout.trim().split('\n')
    expect(lines).toHaveLength(5)
    expect(lines[2]).toContain('tail me one')
    expect(lines[3]).toContain('tail me late')
    expect(lines[4]).toContain('tail me two')
    // the columns after the model stay aligned whatever the model's name
    expect(lines[3]!.indexOf(' ok ')).toBe(lines[2]!.indexOf(' ok '))
    expect(lines[1]!.indexOf(' risk ')).toBe(lines[0]!.indexOf(' risk '))

    // more than one poll reads (2,000): every record still shows, once, in arrival order
    const flood = run(LogsTail, ['--interval', '1', '--lines', '0', '--count', '2600', '--json'])
    await new Promise((r) => setTimeout(r, 300))
    const start = Date.now() - 3_600_000
    const batches = [0, 1, 2].map((b) => Array.from({ length: 1000 }, (_, i) => ({ prompt: `flood ${b}-${i}`, model: 'gpt-4o', latency: 1, timestamp: new Date(start + i).toISOString() })))
    for (const records of batches) await collector.client.post('/v1/llm/requests/batch', { records }, { token: seed.apiKey })
    const flooded = await flood
    expect(flooded.exitCode).toBe(0)
    const prompts = flooded.stdout.trim().split('\n').map((l) => (JSON.parse(l) as LogResult).prompt)
    expect(prompts).toHaveLength(2600)
    expect(new Set(prompts).size).toBe(2600)
    const batchOf = prompts.map((p) => Number(p.slice(6, 7)))
    expect(batchOf).toEqual([...batchOf].sort())
    expect(batchOf.filter((b) => b < 2)).toHaveLength(2000)
    // within a batch (one createdAt), in call order
    expect(prompts).toEqual([...batches[0]!, ...batches[1]!, ...batches[2]!.slice(0, 600)].map((r) => r.prompt))

    const tailJson = run(LogsTail, ['--interval', '1', '--lines', '0', '--count', '1', '--json'])
    await new Promise((r) => setTimeout(r, 300))
    await post({ prompt: 'tail as json', model: 'gpt-4o', latency: 12 })
    const j = await tailJson
    expect(JSON.parse(j.stdout.trim())).toMatchObject({ prompt: 'tail as json' })
  })
})

describe('logs tail through a collector outage', () => {
  it('waits out a collector that stops answering, says so on stderr, and shows what arrived meanwhile', async () => {
    // the CLI reaches the collector through a relay the test can cut, as a restart would
    const sockets = new Set<Socket>()
    const relay = createServer((client) => {
      const upstream = connect(Number(new URL(collector.url).port), '127.0.0.1')
      for (const s of [client, upstream]) {
        sockets.add(s)
        s.on('close', () => sockets.delete(s))
        s.on('error', () => s.destroy())
      }
      client.pipe(upstream).pipe(client)
    })
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
    const port = (relay.address() as AddressInfo).port
    const relayUrl = `http://127.0.0.1:${port}`
    const saved = readConfig(join(tmp.dir, 'config.json'))
    writeConfig({ ...saved, collector: relayUrl }, join(tmp.dir, 'config.json'))
    try {
      const tail = run(LogsTail, ['--interval', '1', '--lines', '0', '--count', '2', '--json'])
      await new Promise((r) => setTimeout(r, 300))
      await post({ prompt: 'before the outage', model: 'gpt-4o', latency: 1 })
      await new Promise((r) => setTimeout(r, 1500))
      // down: new connections refused, open ones cut
      await new Promise<void>((resolve) => {
        relay.close(() => resolve())
        for (const s of sockets) s.destroy()
      })
      await new Promise((r) => setTimeout(r, 1500))
      await post({ prompt: 'during the outage', model: 'gpt-4o', latency: 1 })
      await new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve))
      const out = await tail
      expect(out.exitCode).toBe(0)
      expect(out.stdout.trim().split('\n').map((l) => (JSON.parse(l) as LogResult).prompt)).toEqual(['before the outage', 'during the outage'])
      expect(out.stderr).toContain('is unreachable')
      expect(out.stderr).toContain('still trying every 1 s')
      expect(out.stderr).toContain('the collector answers again')
    } finally {
      writeConfig(saved, join(tmp.dir, 'config.json'))
      relay.close()
      for (const s of sockets) s.destroy()
    }
  })
})

describe('errors', () => {
  it('a value the collector refuses is a usage error (exit 2), its issue said once', async () => {
    const r = await run(ProjectsCreate, [''])
    expect(r.exitCode).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr.match(/body\.name/g)).toHaveLength(1)
    expect(r.stderr).toContain('[VALIDATION_ERROR]')
  })

  it("oclif's own messages read as one clean line", async () => {
    const r = await run(SettingsSet, [])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).not.toMatch(/::|  /)
    expect(r.stderr).toMatch(/^Error: Missing 1 required arg: setting/)
  })

  it('logs tail --json prints its error on one line, as its records', async () => {
    const r = await run(LogsTail, ['--json', '--collector', 'http://127.0.0.1:9'])
    expect(r.exitCode).toBe(1)
    const lines = r.stdout.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!).error.code).toBe('NOT_LOGGED_IN')
  })

  it('not logged in and no project: says not logged in, which is what to fix first', async () => {
    const empty = tempConfigDir()
    try {
      const r = await run(Metrics, [])
      expect(r.exitCode).toBe(1)
      expect(r.stderr).toContain('not logged in: run `llmguard login`')
    } finally {
      empty.cleanup()
      process.env.LLMGUARD_CONFIG_DIR = tmp.dir
    }
  })

  it('logs tail takes --policy-violation / --no-policy-violation like logs search', async () => {
    const tail = run(LogsTail, ['--no-policy-violation', '--interval', '1', '--lines', '0', '--count', '1', '--json'])
    await new Promise((r) => setTimeout(r, 300))
    await post({ prompt: 'no violation here', model: 'gpt-4o', latency: 3 })
    const out = await tail
    expect(out.exitCode).toBe(0)
    expect(JSON.parse(out.stdout.trim())).toMatchObject({ prompt: 'no violation here', policyViolation: null })
  })
})

describe('incidents', () => {
  it('list, show, ack, resolve, rca; a backwards move is the collector 409', async () => {
    await post({ prompt: 'slow call', model: 'gpt-slow-test', latency: 60_000 })
    const list = await run<any>(IncidentsList, ['--status', 'open', '--type', 'latency', '--json'])
    const incident = list.json.items.find((i: any) => i.key === 'gpt-slow-test')
    expect(incident).toMatchObject({ type: 'latency', status: 'open' })
    const human = await run(IncidentsList, ['--type', 'latency'])
    expect(human.stdout).toMatch(/ID\s+STATUS\s+SEVERITY\s+TYPE/)
    expect(human.stdout).toContain(incident.id)

    const show = await run<any>(IncidentsShow, [incident.id])
    expect(show.stdout).toContain(incident.title)
    expect(show.stdout).toContain('Related requests')
    expect((await run<any>(IncidentsShow, [incident.id, '--json'])).json.relatedRequests.length).toBeGreaterThan(0)

    const rca = await run<any>(IncidentsRca, [incident.id, '--json'])
    expect(rca.json.rca).toMatchObject({ source: 'heuristic' })
    const rcaHuman = (await run(IncidentsRca, [incident.id])).stdout
    expect(rcaHuman).toContain('Recommended fix')
    // why it is the collector's own analysis (this collector has no OpenAI key)
    expect(rcaHuman).toContain('Root cause (heuristic: no OPENAI_API_KEY on the collector,')

    const applied = await run<any>(RemediateApply, [incident.id, 'switch_model', 'to=gpt-4o-mini', 'from=gpt-slow-test', '--json'])
    expect(applied.exitCode).toBe(0)
    expect(applied.json).toMatchObject({ actionType: 'switch_model', parameters: { to: 'gpt-4o-mini', from: 'gpt-slow-test' }, state: 'active' })
    const threshold = await run(RemediateApply, [incident.id, 'increase_safety_threshold', 'threshold=60'])
    expect(threshold.stdout).toMatch(/increase_safety_threshold\s+threshold=60\s+active/)
    const listed = await run<any>(RemediateList, [incident.id, '--json'])
    expect(listed.json.items).toHaveLength(2)
    expect((await run(RemediateList, [incident.id])).stdout).toMatch(/ID\s+ACTION\s+PARAMETERS\s+STATE/)
    // a later action on the same field: the refusal names it
    const later = await run<any>(RemediateApply, [incident.id, 'switch_model', 'to=gpt-4.1-mini', 'from=gpt-slow-test', '--json'])
    const conflict = await run(RemediateRollback, [applied.json.id])
    expect(conflict.exitCode).toBe(1)
    expect(conflict.stderr).toContain(`(later: ${later.json.id}) [ROLLBACK_CONFLICT]`)
    expect((await run<any>(RemediateRollback, [later.json.id, '--json'])).json.state).toBe('rolled_back')
    const rolled = await run<any>(RemediateRollback, [applied.json.id, '--json'])
    expect(rolled.json).toMatchObject({ id: applied.json.id, state: 'rolled_back' })
    // an ended action shows when it ended, not when it would have expired
    expect((await run(RemediateList, [incident.id])).stdout).toMatch(/rolled_back\s+user\s+just now\s+ended just now/)
    // a page past the end is not "none"
    const past = await run(RemediateList, [incident.id, '--page', '99'])
    expect(past.stdout).toBe('nothing on page 99: 3 in all, on page 1\n')
    expect((await run(RemediateList, [incident.id, '--page', '99', '--limit', '2'])).stdout).toBe('nothing on page 99: 3 in all, on pages 1–2\n')
    const badParam = await run(RemediateApply, [incident.id, 'increase_safety_threshold', 'threshold=high'])
    expect(badParam.exitCode).toBe(2)
    expect(badParam.stderr).toMatch(/^Error: threshold: /)
    expect((await run(RemediateApply, [incident.id, 'reboot_everything'])).exitCode).toBe(2)

    expect((await run<any>(IncidentsAck, [incident.id, '--json'])).json.status).toBe('acknowledged')
    expect((await run(IncidentsResolve, [incident.id])).stdout).toBe(`resolved: ${incident.title}\n`)
    const back = await run(IncidentsAck, [incident.id])
    expect(back.exitCode).toBe(1)
    expect(back.stderr).toMatch(/\[INVALID_TRANSITION\]\n$/)
    expect((await run(IncidentsShow, ['nope'])).stderr).toBe('Error: not an incident id: "nope" (ids are whole UUIDs, 36 characters)\n')
    // a shortened id (the start of one from the list) is refused the same way, before any request
    const short = await run(IncidentsAck, [incident.id.slice(0, 8)])
    expect(short.exitCode).toBe(2)
    expect(short.stderr).toContain(`not an incident id: "${incident.id.slice(0, 8)}"`)
    expect((await run(RemediateList, [incident.id.slice(0, 8)])).stderr).toContain('not an incident id')
    expect((await run(IncidentsList, ['--status', 'closed'])).exitCode).toBe(2)
  })
})

describe('settings and billing', () => {
  it('settings get/set with JSON values; unknown or invalid settings are usage errors', async () => {
    const get = await run<any>(SettingsGet, ['--json'])
    expect(get.json).toMatchObject({ projectId: seed.projectId, safetyThreshold: 80, blockOnRisk: false })
    const set = await run<any>(SettingsSet, ['safetyThreshold=65', 'blockOnRisk=true', 'systemPrompt=Be brief.', 'sensitiveKeywords=["project x"]', '--json'])
    expect(set.json).toMatchObject({ safetyThreshold: 65, blockOnRisk: true, systemPrompt: 'Be brief.', sensitiveKeywords: ['project x'] })
    expect((await run(SettingsSet, ['rateLimit=100'])).stdout).toMatch(/rateLimit\s+100/)
    expect((await run(SettingsGet, [])).stdout).toMatch(/safetyThreshold\s+65/)
    const bad = await run(SettingsSet, ['safetyThreshold=500'])
    expect(bad.exitCode).toBe(2)
    expect(bad.stderr).toMatch(/^Error: safetyThreshold: /)
    const unknown = await run(SettingsSet, ['colour=blue', 'rateLimit=100'])
    expect(unknown.exitCode).toBe(2)
    expect(unknown.stderr).toMatch(/^Error: unknown setting "colour"; the settings are preferredModel, safetyThreshold, .*incidentLatencyMs.*\n$/)
    expect(unknown.stderr).not.toContain('at least one')
    expect((await run(SettingsSet, ['novalue'])).stderr).toContain('expected NAME=VALUE')
  })

  it('billing status; upgrade without Stripe is the collector 503 in one line', async () => {
    const status = await run<any>(BillingStatus, ['--json'])
    expect(status.json).toMatchObject({ plan: 'free', monthlyLimit: 10_000 })
    expect(status.json.usage).toBeGreaterThanOrEqual(300)
    const human = (await run(BillingStatus, [])).stdout
    expect(human).toMatch(/plan\s+free \(active\)/)
    // a free plan is never billed: no date that reads like an invoice on its way
    expect(human).toMatch(/next bill\s+- \(no subscription\)\n/)
    // a subscription (as the Stripe webhook records it) shows its period end
    await collector.sql`insert into billing_accounts (user_id, plan, stripe_subscription_id, current_period_end)
      select id, 'pro', 'sub_test', '2031-02-03T04:05:06Z' from users where email = ${seed.email}
      on conflict (user_id) do update set plan = excluded.plan, stripe_subscription_id = excluded.stripe_subscription_id, current_period_end = excluded.current_period_end`
    expect((await run(BillingStatus, [])).stdout).toMatch(/next bill\s+2031-02-03T04:05:06\.000Z \(in /)
    await collector.sql`update billing_accounts set plan = 'free', stripe_subscription_id = null, current_period_end = null
      where user_id = (select id from users where email = ${seed.email})`
    const up = await run(BillingUpgrade, [])
    expect(up.exitCode).toBe(1)
    expect(up.stderr).toMatch(/^Error: .+ \[BILLING_NOT_CONFIGURED\]\n$/)
  })
})

describe('outbox and doctor', () => {
  it('status shows queued and parked records; flush and replay ship them', async () => {
    const file = join(tmp.dir, 'outbox.sqlite')
    expect((await run(OutboxStatus, ['--outbox', file])).stderr).toContain(`no outbox at ${file}`)
    // an app without a key keeps records in the outbox
    const app = new LLMGuard({ outbox: file, policy: false, endpoint: collector.url, logger: { warn: () => undefined } })
    app.record({ prompt: 'queued one', model: 'gpt-4o', latency: 5 })
    app.record({ prompt: 'queued two', model: 'gpt-4o', latency: 6 })
    await app.shutdown()
    // and one the collector refused earlier, parked
    const store = new SqliteStore(file)
    const body = JSON.stringify({ id: randomUUID(), prompt: 'parked one', model: 'gpt-4o', latency: 7, timestamp: new Date().toISOString() })
    const { seqs } = store.append([{ id: 'p', body, bytes: body.length, createdAt: Date.now() }], 1000)
    store.park([{ seq: seqs[0]!, code: 'PLAN_LIMIT_EXCEEDED', message: 'monthly limit reached', status: 429 }], Date.now())
    store.close()

    const status = await run<any>(OutboxStatus, ['--outbox', file, '--json'])
    expect(status.json.outboxes[0]).toMatchObject({ path: file, queued: 2, parked: 1 })
    const human = await run(OutboxStatus, ['--outbox', file])
    expect(human.stdout).toMatch(/queued\s+2/)
    expect(human.stdout).toContain('PLAN_LIMIT_EXCEEDED')

    const noKey = await run(OutboxFlush, ['--outbox', file])
    expect(noKey.exitCode).toBe(2)
    // a collector that is not there: the reason once, not the code and then the code again
    const unreachable = await run(OutboxFlush, ['--outbox', file, '--api-key', seed.apiKey, '--collector', 'http://127.0.0.1:9', '--timeout', '1'])
    expect(unreachable.exitCode).toBe(1)
    expect(unreachable.stderr).toMatch(/^Error: 2 records are still queued: connect ECONNREFUSED 127\.0\.0\.1:9 \[OUTBOX_NOT_DRAINED\]\n$/)
    // a file that is not an outbox is an error for flush and replay (as for status), never "0 sent"
    const notAnOutbox = join(tmp.dir, 'not-an-outbox.sqlite')
    writeFileSync(notAnOutbox, 'plain text, not SQLite')
    for (const cmd of [OutboxFlush, OutboxReplay]) {
      const bad = await run(cmd, ['--outbox', notAnOutbox, '--api-key', seed.apiKey, '--collector', collector.url])
      expect(bad.exitCode).toBe(1)
      expect(bad.stderr).toBe(`Error: cannot open the outbox ${notAnOutbox} (file is not a database) [OUTBOX_UNREADABLE]\n`)
      expect(bad.stdout).toBe('')
    }
    // nor is another application's SQLite database: refused, and left untouched (made with the
    // SDK's own driver: the CLI has no SQLite of its own)
    type Db = { exec(sql: string): void; pragma(p: string, o: { simple: true }): unknown; close(): void }
    const Database = createRequire(new URL('../../sdk/package.json', import.meta.url))('better-sqlite3') as new (path: string) => Db
    const appDb = join(tmp.dir, 'app.db')
    const other = new Database(appDb)
    other.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY)')
    other.close()
    for (const cmd of [OutboxStatus, OutboxFlush]) {
      const refused = await run(cmd, ['--outbox', appDb, '--api-key', seed.apiKey, '--collector', collector.url])
      expect(refused.exitCode).toBe(1)
      expect(refused.stderr).toContain(`cannot open the outbox ${appDb} (not an LLMGuard outbox: the file holds other tables (orders)`)
    }
    const untouched = new Database(appDb)
    expect(untouched.pragma('journal_mode', { simple: true })).toBe('delete')
    untouched.close()
    const badStatus = await run(OutboxStatus, ['--outbox', notAnOutbox])
    expect(badStatus.exitCode).toBe(1)
    expect(badStatus.stderr).toBe(`Error: cannot open the outbox ${notAnOutbox} (file is not a database) [OUTBOX_UNREADABLE]\n`)
    expect(readFileSync(notAnOutbox, 'utf8')).toBe('plain text, not SQLite')
    const flush = await run<any>(OutboxFlush, ['--outbox', file, '--api-key', seed.apiKey, '--collector', collector.url, '--json'])
    expect(flush.json).toMatchObject({ sent: 2, queued: 0, parked: 1 })
    // a seq that is not parked is refused before anything moves, not skipped in silence
    const parkedSeq: number = status.json.outboxes[0].parkedRecords[0].seq
    const wrongSeq = await run(OutboxReplay, ['--outbox', file, '--api-key', seed.apiKey, '--collector', collector.url, '--seq', String(parkedSeq + 99)])
    expect(wrongSeq.exitCode).toBe(2)
    expect(wrongSeq.stderr).toContain(`no parked record with seq ${parkedSeq + 99} in ${file}`)
    expect((await run<any>(OutboxStatus, ['--outbox', file, '--json'])).json.outboxes[0]).toMatchObject({ parked: 1 })
    const replay = await run(OutboxReplay, ['--outbox', file, '--api-key', seed.apiKey, '--collector', collector.url, '--seq', String(parkedSeq)])
    expect(replay.stdout).toBe('1 parked records moved back; 1 sent, 0 still queued, 0 parked\n')
    const found = await run<any>(LogsSearch, ['--search', 'parked one', '--json'])
    expect(found.json.total).toBe(1)

    const doctor = await run<any>(Doctor, ['--outbox', file, '--json'])
    expect(doctor.json.ok).toBe(true)
    expect(doctor.json.checks.map((c: any) => [c.name, c.status])).toEqual([
      ['config', 'ok'],
      ['collector', 'ok'],
      ['session', 'ok'],
      ['project', 'ok'],
      ['outbox', 'ok'],
    ])
    // an outbox named but not there is worth a warning, not "no local outbox files"
    const missing = await run<any>(Doctor, ['--outbox', join(tmp.dir, 'nope.sqlite'), '--json'])
    expect(missing.json.checks.at(-1)).toMatchObject({ name: 'outbox', status: 'warn', detail: `no outbox at ${join(tmp.dir, 'nope.sqlite')}` })
    const down = await run(Doctor, ['--collector', 'http://127.0.0.1:9', '--outbox', file])
    expect(down.exitCode).toBe(1)
    expect(down.stdout).toMatch(/✗ collector\s+collector at http:\/\/127\.0\.0\.1:9 is unreachable/)
  })
})

describe('doctor with a config it cannot read', () => {
  it('fails the config check and still runs the others', async () => {
    const broken = tempConfigDir()
    try {
      writeFileSync(join(broken.dir, 'config.json'), '{"collector": "http://loc', { mode: 0o600 })
      const r = await run<any>(Doctor, ['--collector', collector.url, '--outbox', join(broken.dir, 'none.sqlite'), '--json'])
      expect(r.json.ok).toBe(false)
      expect(r.json.checks.map((ch: any) => [ch.name, ch.status])).toEqual([
        ['config', 'fail'],
        ['collector', 'ok'],
        ['session', 'warn'],
        ['outbox', 'warn'],
      ])
      expect(r.json.checks[0].detail).toMatch(new RegExp(`^cannot read ${join(broken.dir, 'config.json')}: .* \\(fix or delete the file\\)$`))
      const human = await run(Doctor, ['--collector', collector.url, '--outbox', join(broken.dir, 'none.sqlite')])
      expect(human.exitCode).toBe(1)
      expect(human.stdout).toMatch(/✗ config\s+cannot read /)
      expect(human.stdout).toMatch(/✓ collector\s+/)
      expect(human.stderr).toBe('Error: 1 check(s) failed [DOCTOR_FAILED]\n')
    } finally {
      broken.cleanup()
      process.env.LLMGUARD_CONFIG_DIR = tmp.dir
    }
  })
})

/**
 * Runs `body` with a home directory of its own (where the SDK and `outbox status` look for
 * outbox files) and no LLMGUARD_API_KEY; both are put back, and the directory removed, after.
 */
async function withOwnHome(body: (home: string) => Promise<void>): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'llmguard-home-'))
  const saved = { HOME: process.env.HOME, LLMGUARD_API_KEY: process.env.LLMGUARD_API_KEY }
  process.env.HOME = home
  delete process.env.LLMGUARD_API_KEY
  try {
    await body(home)
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
    rmSync(home, { recursive: true, force: true })
  }
}

describe('the outbox of an API key', () => {
  it('LLMGUARD_API_KEY alone finds the app\'s default outbox: the SDK\'s file for the key and the collector logged in to', async () => {
    // the SDK names the file under the home directory: a home of the test's own
    await withOwnHome(async (home) => {
      // the app as `init` set it up (LLMGUARD_ENDPOINT = this collector), with two records queued
      const file = defaultOutboxPath(collector.url, seed.apiKey)
      expect(file.startsWith(home)).toBe(true)
      mkdirSync(dirname(file), { recursive: true })
      const store = new SqliteStore(file)
      const bodies = ['from the app one', 'from the app two'].map((prompt) => JSON.stringify({ id: randomUUID(), prompt, model: 'gpt-4o', latency: 3, timestamp: new Date().toISOString() }))
      store.append(bodies.map((body, i) => ({ id: `r${i}`, body, bytes: body.length, createdAt: Date.now() })), 1000)
      store.close()
      expect(readConfig(join(tmp.dir, 'config.json')).collector).toBe(collector.url)

      process.env.LLMGUARD_API_KEY = seed.apiKey
      const status = await run<any>(OutboxStatus, ['--json'])
      expect(status.exitCode).toBe(0)
      expect(status.json.outboxes).toMatchObject([{ path: file, queued: 2 }])
      const doctor = await run<any>(Doctor, ['--json'])
      expect(doctor.json.checks.at(-1)).toEqual({ name: 'outbox', status: 'ok', detail: `${file}: 2 queued, 0 parked, 0 dropped` })
      const flush = await run<any>(OutboxFlush, ['--json'])
      expect(flush.exitCode).toBe(0)
      expect(flush.json).toMatchObject({ outbox: file, sent: 2, queued: 0 })
      expect((await run<any>(LogsSearch, ['--search', 'from the app', '--json'])).json.total).toBe(2)
      // another collector named: its file, as the SDK with that endpoint would name it
      const elsewhere = await run<any>(OutboxStatus, ['--collector', 'http://127.0.0.1:9/', '--json'])
      expect(elsewhere.json.error).toMatchObject({ code: 'OUTBOX_NOT_FOUND', message: `no outbox at ${defaultOutboxPath('http://127.0.0.1:9', seed.apiKey)}` })
    })
  })
})

describe('every outbox in ~/.llmguard', () => {
  it('shows the readable ones when another cannot be read, names that one, and exits 1', async () => {
    await withOwnHome(async (home) => {
      const dir = join(home, '.llmguard')
      mkdirSync(dir, { recursive: true })
      const good = join(dir, 'outbox-aaaa.sqlite')
      const store = new SqliteStore(good)
      const body = JSON.stringify({ id: randomUUID(), prompt: 'queued', model: 'gpt-4o', latency: 3, timestamp: new Date().toISOString() })
      store.append([{ id: 'r0', body, bytes: body.length, createdAt: Date.now() }], 1000)
      store.close()
      const junk = join(dir, 'outbox-bbbb.sqlite')
      writeFileSync(junk, 'not a database at all, not even close to one; SQLite wants a header')
      const json = await run<any>(OutboxStatus, ['--json'])
      expect(json.exitCode).toBe(1)
      expect(json.json.outboxes).toMatchObject([{ path: good, queued: 1 }])
      expect(json.json.unreadable).toMatchObject([{ path: junk, code: 'OUTBOX_UNREADABLE' }])
      const human = await run(OutboxStatus, [])
      expect(human.exitCode).toBe(1)
      expect(human.stdout).toContain(good)
      expect(human.stdout).toContain(junk)
      expect(human.stderr).toContain('1 outbox file(s) could not be read')
    })
  })
})

describe('collector start', () => {
  it('runs the collector on the given flags until SIGINT', async () => {
    const port = await freePort()
    const dataDir = copyTemplateDataDir()
    const before = process.listenerCount('SIGINT')
    const rejectionsBefore = process.listenerCount('unhandledRejection')
    const started = run<any>(CollectorStart, ['--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'silent', '--signup-limit', '1'])
    const deadline = Date.now() + 20_000
    let health: Response | undefined
    while (Date.now() < deadline) {
      health = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined)
      if (health) break
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(health?.status).toBe(200)
    // running: the crash handlers are in place, as for the collector's own process
    expect(process.listenerCount('unhandledRejection')).toBe(rejectionsBefore + 1)
    // --signup-limit reached the collector: one sign-up from this address, then 429
    const register = (email: string) =>
      fetch(`http://127.0.0.1:${port}/v1/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'a password 123' }) })
    expect((await register('one@example.com')).status).toBe(201)
    expect((await register('two@example.com')).status).toBe(429)
    emitToCommand('SIGINT', before)
    const out = await started
    expect(out.exitCode).toBe(0)
    expect(out.stdout).toContain(`listening on http://127.0.0.1:${port} (embedded database in ${dataDir})`)
    expect(out.result).toEqual({ url: `http://127.0.0.1:${port}`, embedded: true, dataDir })
    // stopped: nothing of the command's is left on the process
    expect([process.listenerCount('SIGINT'), process.listenerCount('unhandledRejection')]).toEqual([before, rejectionsBefore])
  })

  it('a SIGTERM during start-up stops the collector once it is up: its database closed, its lock gone', async () => {
    const port = await freePort()
    const dataDir = copyTemplateDataDir()
    const before = process.listenerCount('SIGTERM')
    const started = run<any>(CollectorStart, ['--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'silent'])
    const deadline = Date.now() + 20_000
    while (process.listenerCount('SIGTERM') <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    // the signal comes while the collector is still starting: nothing answers on its port yet
    expect(await fetch(`http://127.0.0.1:${port}/healthz`).then(() => 'up', () => 'starting')).toBe('starting')
    emitToCommand('SIGTERM', before)
    const out = await started
    expect(out.exitCode).toBe(0)
    expect(out.stdout).toContain('stopping…')
    expect(existsSync(join(dataDir, 'collector.lock'))).toBe(false)
    expect(process.listenerCount('SIGTERM')).toBe(before)
  })

  it('explains a missing collector package', async () => {
    const missing = Object.assign(new Error("Cannot find package '@llmguard/collector'"), { code: 'ERR_MODULE_NOT_FOUND' })
    await expect(loadCollector(() => Promise.reject(missing))).rejects.toMatchObject({ code: 'COLLECTOR_NOT_INSTALLED', message: expect.stringContaining('the collector is not installed') })
    const bad = await run(CollectorStart, ['--port', '70000'])
    expect(bad.exitCode).toBe(2)
    expect((await run(CollectorStart, ['--rca-daily-limit', '-1'])).exitCode).toBe(2)
    expect((await run(CollectorStart, ['--signup-limit', '0'])).exitCode).toBe(2)
  })
})
