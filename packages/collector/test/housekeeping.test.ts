import { randomBytes, randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import postgres from 'postgres'
import Stripe from 'stripe'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { DatadogResult, Project, StripeWebhookResult } from '@llmguard/shared'
import { signDatadogPayload } from '../src/integrations/datadog.js'
import { Housekeeping, HOUSEKEEPING_CHUNK, HOUSEKEEPING_JOB, RETENTION_DAYS, type HousekeptTable } from '../src/jobs/housekeeping.js'
import { createLogger } from '../src/logger.js'
import { failure, setupProject, signUp, type TestUser } from './helpers/accounts.js'
import { freePort, onRealPostgres, startTestCollector, type TestCollector } from './helpers/collector.js'

const STRIPE_SECRET = 'whsec_test_housekeeping_0123456789abcdef01'
const DATADOG_SECRET = 'dd-webhook-secret-housekeeping-0123456789'
const HOUR = 3_600_000
let collector: TestCollector
let owner: TestUser
let project: Project
let apiKey: string

beforeAll(async () => {
  collector = await startTestCollector({ env: { STRIPE_WEBHOOK_SECRET: STRIPE_SECRET, DATADOG_WEBHOOK_SECRET: DATADOG_SECRET } })
  // the app's own job: its first run (a minute after start) must not race the runs below
  await collector.app.housekeeping.stop()
  const setup = await setupProject(collector)
  ;({ user: owner, project } = setup)
  apiKey = setup.key.key
})
afterAll(() => collector?.close())

/** Each run names its own hour: a period runs once. */
let hours = 0
const nextHour = () => new Date(Date.UTC(2031, 0, 1) + hours++ * HOUR)
const housekeeping = (sql = collector.sql) => new Housekeeping(sql, createLogger('silent'))
async function run(sql = collector.sql) {
  const result = await housekeeping(sql).runOnce(nextHour())
  if (!result.ran) throw new Error(`expected the run to happen, got ${result.reason}`)
  return result
}

/** `now()` moved back by the table's retention, plus (outside) or minus (inside) a minute. */
const ago = (table: HousekeptTable, side: 'inside' | 'outside') =>
  collector.sql`now() - ${RETENTION_DAYS[table]} * interval '1 day' ${side === 'outside' ? collector.sql`- interval '1 minute'` : collector.sql`+ interval '1 minute'`}`

const ids = async (query: Promise<{ id: string }[]>) => (await query).map((r) => r.id).sort()

describe('housekeeping', () => {
  it('prunes each table past its retention and keeps the rows just inside it', async () => {
    const { sql } = collector
    await sql`insert into stripe_events (id, type, received_at) values
      ('evt_hk_out', 't', ${ago('stripe_events', 'outside')}), ('evt_hk_in', 't', ${ago('stripe_events', 'inside')}), ('evt_hk_new', 't', now())`
    await sql`insert into datadog_events (id, project_id, received_at) values
      ('dd-out', ${project.id}, ${ago('datadog_events', 'outside')}), ('dd-in', ${project.id}, ${ago('datadog_events', 'inside')})`
    await sql`insert into rca_calls (user_id, at) values (${owner.id}, ${ago('rca_calls', 'outside')}), (${owner.id}, ${ago('rca_calls', 'inside')}), (${owner.id}, now())`
    const token = (id: string, expires: postgres.PendingQuery<postgres.Row[]>, revoked = false) =>
      sql`insert into refresh_tokens (id, user_id, family_id, token_hash, expires_at, revoked_at)
        values (${id}, ${owner.id}, ${randomUUID()}, ${randomBytes(32).toString('hex')}, ${expires}, ${revoked ? sql`now()` : null})`
    const [tokOut, tokIn, tokRevoked] = [randomUUID(), randomUUID(), randomUUID()]
    await token(tokOut, ago('refresh_tokens', 'outside'))
    await token(tokIn, ago('refresh_tokens', 'inside'))
    // revoked but not expired: a replay must still be recognised until it expires
    await token(tokRevoked, sql`now() + interval '1 day'`, true)
    await sql`insert into login_known_addresses (user_id, address, last_login_at) values
      (${owner.id}, 'out', ${ago('login_known_addresses', 'outside')}), (${owner.id}, 'in', ${ago('login_known_addresses', 'inside')})`
    await sql`insert into anomaly_hours (project_id, type, hour) values
      (${project.id}, 'anomaly_out', ${ago('anomaly_hours', 'outside')}), (${project.id}, 'anomaly_in', ${ago('anomaly_hours', 'inside')})`
    // job a: two periods past retention go, the one inside stays; job b: everything is old,
    // but its newest finished period stays (the anomaly job reads "has it ever run")
    const jobRun = (job: string, period: string, days: number, finished = true) =>
      sql`insert into job_runs (job, period, started_at, finished_at)
        values (${job}, ${period}, now() - ${days} * interval '1 day', ${finished ? sql`now() - ${days} * interval '1 day'` : null})`
    const jobDays = RETENTION_DAYS.job_runs
    await jobRun('test:a', '2030-01-01T00:00:00.000Z', jobDays + 10)
    await jobRun('test:a', '2030-01-02T00:00:00.000Z', jobDays + 1 / 1440)
    await jobRun('test:a', '2030-01-03T00:00:00.000Z', jobDays - 1 / 1440)
    await jobRun('test:b', '2030-01-01T00:00:00.000Z', jobDays + 10)
    await jobRun('test:b', '2030-01-02T00:00:00.000Z', jobDays + 5)
    // an unfinished later run does not count as the newest finished one
    await jobRun('test:b', '2030-01-03T00:00:00.000Z', jobDays + 4, false)

    const result = await run()
    expect(result).toEqual({ ran: true, pruned: { stripe_events: 1, datadog_events: 1, job_runs: 3, rca_calls: 1, refresh_tokens: 1, login_known_addresses: 1, anomaly_hours: 1 }, failed: [], complete: true })
    expect((await sql<{ address: string }[]>`select address from login_known_addresses where user_id = ${owner.id} and address in ('in', 'out')`).map((r) => r.address)).toEqual(['in'])
    expect(await ids(sql`select id from stripe_events where id like 'evt_hk_%'`)).toEqual(['evt_hk_in', 'evt_hk_new'])
    expect((await sql<{ type: string }[]>`select type from anomaly_hours where project_id = ${project.id}`).map((r) => r.type)).toEqual(['anomaly_in'])
    expect(await ids(sql`select id from datadog_events where project_id = ${project.id}`)).toEqual(['dd-in'])
    expect((await sql`select count(*)::int as n from rca_calls where user_id = ${owner.id}`)[0]!.n).toBe(2)
    expect(await ids(sql`select id from refresh_tokens where id in ${sql([tokOut, tokIn, tokRevoked])}`)).toEqual([tokIn, tokRevoked].sort())
    const runs = await sql<{ job: string; period: string }[]>`select job, period from job_runs where job like 'test:%' order by job, period`
    expect(runs.map((r) => `${r.job} ${r.period.slice(0, 10)}`)).toEqual(['test:a 2030-01-03', 'test:b 2030-01-02', 'test:b 2030-01-03'])
    // the user data around them is untouched (the owner, the project, the live session)
    expect((await sql`select count(*)::int as n from refresh_tokens where user_id = ${owner.id} and expires_at > now() and revoked_at is null`)[0]!.n).toBe(1)
    // nothing left to do: the next period prunes nothing
    expect((await run()).pruned).toEqual({})
  })

  it('a replayed webhook id inside the retention is still a duplicate; one past it is processed again', async () => {
    const deliverStripe = async (payload: unknown) => {
      const body = JSON.stringify(payload)
      const res = await collector.client.send<StripeWebhookResult>('POST', '/v1/webhooks/stripe', {
        headers: { 'content-type': 'application/json', 'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload: body, secret: STRIPE_SECRET }) },
        body: JSON.parse(body),
      })
      return res.data
    }
    const stripeEvent = () => ({
      id: `evt_${randomBytes(12).toString('hex')}`,
      object: 'event',
      api_version: Stripe.API_VERSION,
      created: Math.floor(Date.now() / 1000),
      data: { object: { id: 'cus_nobody', object: 'customer' } },
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type: 'customer.updated',
    })
    // freshly signed on every delivery, as Stripe's retries and the Datadog relay's are
    const deliverDatadog = async (alert: unknown) => {
      const raw = JSON.stringify(alert)
      const res = await collector.client.send<DatadogResult>('POST', '/v1/webhooks/datadog', {
        headers: { 'x-llmguard-signature': signDatadogPayload(DATADOG_SECRET, raw), 'content-type': 'application/json', 'x-api-key': apiKey },
        body: JSON.parse(raw),
      })
      return res.data
    }
    const alert = () => ({
      id: randomUUID(),
      monitorId: '77',
      title: '[Triggered] error rate',
      transition: 'Triggered',
      priority: 'P3',
      date: String(Date.now()),
      tags: `llmguard_project:${project.id}`,
    })

    const [keptEvent, prunedEvent, freshEvent] = [stripeEvent(), stripeEvent(), stripeEvent()]
    for (const e of [keptEvent, prunedEvent, freshEvent]) expect(await deliverStripe(e)).toEqual({ duplicate: false, applied: false })
    const [keptAlert, prunedAlert, freshAlert] = [alert(), alert(), alert()]
    for (const a of [keptAlert, prunedAlert, freshAlert]) expect((await deliverDatadog(a)).duplicate).toBe(false)
    await collector.sql`update stripe_events set received_at = ${ago('stripe_events', 'inside')} where id = ${keptEvent.id}`
    await collector.sql`update stripe_events set received_at = ${ago('stripe_events', 'outside')} where id = ${prunedEvent.id}`
    await collector.sql`update datadog_events set received_at = ${ago('datadog_events', 'inside')} where id = ${keptAlert.id}`
    await collector.sql`update datadog_events set received_at = ${ago('datadog_events', 'outside')} where id = ${prunedAlert.id}`

    expect((await run()).pruned).toMatchObject({ stripe_events: 1, datadog_events: 1 })
    expect(await deliverStripe(keptEvent)).toEqual({ duplicate: true })
    expect(await deliverStripe(freshEvent)).toEqual({ duplicate: true })
    expect(await deliverDatadog(keptAlert)).toEqual({ duplicate: true })
    expect(await deliverDatadog(freshAlert)).toEqual({ duplicate: true })
    // past the retention the id is forgotten: the delivery is handled as new
    expect(await deliverStripe(prunedEvent)).toEqual({ duplicate: false, applied: false })
    expect((await deliverDatadog(prunedAlert)).duplicate).toBe(false)
  })

  it('unexpired rotated and revoked refresh tokens keep doing their job after a run; an expired one is gone', async () => {
    const user = await signUp(collector)
    const loggedOut = await signUp(collector)
    const expired = await signUp(collector)
    await collector.sql`update refresh_tokens set expires_at = ${ago('refresh_tokens', 'outside')} where user_id = ${expired.id}`
    await collector.client.post('/v1/auth/refresh', { refreshToken: user.refreshToken })
    await collector.client.send('POST', '/v1/auth/logout', { body: { refreshToken: loggedOut.refreshToken } })
    expect((await run()).pruned).toEqual({ refresh_tokens: 1 })
    expect((await collector.sql`select count(*)::int as n from refresh_tokens where user_id = ${expired.id}`)[0]!.n).toBe(0)
    // the rotated token presented again is still recognised as a replay
    const reused = await failure(collector.client.post('/v1/auth/refresh', { refreshToken: user.refreshToken }))
    expect([reused.status, reused.code]).toEqual([401, 'TOKEN_REUSED'])
    // the logged-out session's access token still finds its session ended
    const ended = await failure(collector.client.get('/v1/auth/me', { token: loggedOut.accessToken }))
    expect([ended.status, ended.message]).toEqual([401, expect.stringMatching(/session has ended/)])
  })

  it('deletes a backlog larger than one chunk, a chunk at a time, and keeps the recent rows', async () => {
    const backlog = 2 * HOUSEKEEPING_CHUNK + 123
    await collector.sql`insert into stripe_events (id, type, received_at)
      select 'evt_backlog_' || g, 't', now() - ${RETENTION_DAYS.stripe_events + 1} * interval '1 day' - g * interval '1 second'
      from generate_series(1, ${backlog}::int) g`
    await collector.sql`insert into stripe_events (id, type, received_at) values ('evt_backlog_recent', 't', ${ago('stripe_events', 'inside')})`
    expect((await run()).pruned).toEqual({ stripe_events: backlog })
    expect(await ids(collector.sql`select id from stripe_events where id like 'evt_backlog_%'`)).toEqual(['evt_backlog_recent'])

    // a small chunk: the same rows go, over as many statements as it takes
    await collector.sql`insert into rca_calls (user_id, at) select ${owner.id}::uuid, ${ago('rca_calls', 'outside')} from generate_series(1, 250)`
    const small = new Housekeeping(collector.sql, createLogger('silent'), { chunkSize: 100 })
    expect(await small.runOnce(nextHour())).toMatchObject({ ran: true, pruned: { rca_calls: 250 } })
  })

  it('two concurrent runs of one period (one per instance on PostgreSQL) do the work once', async () => {
    // on PostgreSQL a second collector on the same database; PGlite serves one process
    const second = onRealPostgres() ? await startTestCollector({ databaseUrl: collector.databaseUrl, keepData: true }) : undefined
    try {
      await second?.app.housekeeping.stop()
      await collector.sql`insert into stripe_events (id, type, received_at)
        select 'evt_twice_' || g, 't', ${ago('stripe_events', 'outside')} from generate_series(1, 3) g`
      const at = nextHour()
      const instances = [housekeeping(), housekeeping(second?.sql ?? collector.sql), housekeeping(), housekeeping(second?.sql ?? collector.sql)]
      const runs = await Promise.all(instances.map((h) => h.runOnce(new Date(at.getTime() + 60_000))))
      expect(runs.filter((r) => r.ran)).toEqual([{ ran: true, pruned: { stripe_events: 3 }, failed: [], complete: true }])
      expect(runs.filter((r) => !r.ran)).toEqual([{ ran: false, reason: 'done' }, { ran: false, reason: 'done' }, { ran: false, reason: 'done' }])
      const period = at.toISOString()
      expect(await collector.sql`select finished_at is not null as finished from job_runs where job = ${HOUSEKEEPING_JOB} and period = ${period}`).toEqual([{ finished: true }])
      // the same hour later on: done already; the next hour runs again
      expect(await housekeeping().runOnce(new Date(at.getTime() + 59 * 60_000))).toEqual({ ran: false, reason: 'done' })
      expect((await housekeeping().runOnce(new Date(at.getTime() + HOUR))).ran).toBe(true)
    } finally {
      await second?.close()
    }
  })

  it('runs on its timer, logs what it pruned, logs a failure without throwing, and stops', async () => {
    const lines: Record<string, unknown>[] = []
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>)
        done()
      },
    })
    const logger = createLogger('info', sink as never)
    const insertOld = (id: string) => collector.sql`insert into stripe_events (id, type, received_at) values (${id}, 't', ${ago('stripe_events', 'outside')})`
    const exists = async (id: string) => (await collector.sql`select 1 from stripe_events where id = ${id}`).length > 0
    const job = new Housekeeping(collector.sql, logger, { firstDelayMs: 10, intervalMs: 30, clock: nextHour })
    await insertOld('evt_timer_1')
    job.start()
    try {
      await vi.waitFor(async () => expect(await exists('evt_timer_1')).toBe(false), { timeout: 5_000 })
      // and again on the next tick (the clock names a new hour each time)
      await insertOld('evt_timer_2')
      await vi.waitFor(async () => expect(await exists('evt_timer_2')).toBe(false), { timeout: 5_000 })
    } finally {
      await job.stop()
    }
    const pruned = lines.filter((l) => l.msg === 'housekeeping pruned old rows')
    expect(pruned.map((l) => l.pruned)).toEqual([{ stripe_events: 1 }, { stripe_events: 1 }])
    expect(pruned.every((l) => l.level === 30)).toBe(true)
    // stopped: nothing runs any more
    await insertOld('evt_timer_3')
    await new Promise((r) => setTimeout(r, 200))
    expect(await exists('evt_timer_3')).toBe(true)
    await collector.sql`delete from stripe_events where id = 'evt_timer_3'`

    // a database that cannot be reached: logged at error, the timer goes on, nothing thrown
    const port = await freePort()
    const unreachable = postgres(`postgres://nobody@127.0.0.1:${port}/none`, { max: 1, connect_timeout: 1, onnotice: () => undefined })
    const failing = new Housekeeping(unreachable, logger, { firstDelayMs: 10, intervalMs: 30, clock: nextHour })
    failing.start()
    try {
      await vi.waitFor(() => expect(lines.filter((l) => l.msg === 'housekeeping failed').length).toBeGreaterThanOrEqual(2), { timeout: 5_000 })
    } finally {
      await failing.stop()
      await unreachable.end({ timeout: 1 })
    }
    expect(lines.find((l) => l.msg === 'housekeeping failed')?.level).toBe(50)
  })

  it('stop() cuts a run short between chunks and returns once the chunk under way is done', async () => {
    const rows = 20_000
    await collector.sql`insert into stripe_events (id, type, received_at)
      select 'evt_stop_' || g, 't', ${ago('stripe_events', 'outside')} from generate_series(1, ${rows}::int) g`
    const left = async () => (await collector.sql`select count(*)::int as n from stripe_events where id like 'evt_stop_%'`)[0]!.n as number
    // 10 rows a statement: the run takes thousands of statements, so it is caught in the middle
    const job = new Housekeeping(collector.sql, createLogger('silent'), { firstDelayMs: 0, chunkSize: 10, clock: nextHour })
    job.start()
    try {
      await vi.waitFor(async () => expect(await left()).toBeLessThan(rows), { timeout: 5_000, interval: 5 })
    } finally {
      await job.stop()
    }
    const afterStop = await left()
    expect(afterStop).toBeGreaterThan(0)
    await new Promise((r) => setTimeout(r, 100))
    expect(await left()).toBe(afterStop)
    await collector.sql`delete from stripe_events where id like 'evt_stop_%'`
  })
})
