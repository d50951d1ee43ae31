import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DatadogResult, Incident, Page, Project } from '@llmguard/shared'
import { signDatadogPayload } from '../src/integrations/datadog.js'
import { startTestCollector, type TestCollector } from './helpers/collector.js'
import { count, failure, setupProject, type TestUser } from './helpers/accounts.js'

const SECRET = 'dd-webhook-secret-0123456789abcdef'
let collector: TestCollector
let owner: TestUser
let project: Project
/** The project's API key: the webhook acts on the project whose key it carries. */
let key: string
/** Another user's project and key, on the same install (so with the same webhook secret). */
let other: { project: Project; key: string }

beforeAll(async () => {
  collector = await startTestCollector({ env: { DATADOG_WEBHOOK_SECRET: SECRET } })
  const mine = await setupProject(collector)
  ;({ user: owner, project } = mine)
  key = mine.key.key
  const theirs = await setupProject(collector)
  other = { project: theirs.project, key: theirs.key.key }
})
afterAll(() => collector.close())

const alert = (over: Record<string, unknown> = {}) => ({
  id: randomUUID(),
  monitorId: '4242',
  title: '[Triggered] p99 latency of checkout-api above 2 s',
  transition: 'Triggered',
  priority: 'P2',
  date: String(Date.now()),
  tags: `env:prod,service:checkout,llmguard_project:${project.id}`,
  link: 'https://app.datadoghq.com/monitors/4242',
  body: 'p99 latency is 2.4 s',
  ...over,
})

/** Posts a raw body with the HMAC signature header (t defaults to now). */
const signed = (body: unknown, t?: number, secret = SECRET, apiKey: string | null = key) => {
  const raw = JSON.stringify(body)
  return collector.client.send<DatadogResult>('POST', '/v1/webhooks/datadog', {
    headers: { 'x-llmguard-signature': signDatadogPayload(secret, raw, t), 'content-type': 'application/json', ...(apiKey ? { 'x-api-key': apiKey } : {}) },
    body: JSON.parse(raw),
  })
}
const withSecret = (body: unknown, secret = SECRET, apiKey: string | null = key) =>
  collector.client.send<DatadogResult>('POST', '/v1/webhooks/datadog', { headers: { 'x-llmguard-webhook-secret': secret, ...(apiKey ? { 'x-api-key': apiKey } : {}) }, body })

const incidents = async () =>
  (await collector.client.get<Page<Incident>>(`/v1/projects/${project.id}/incidents`, { token: owner.accessToken, query: { type: 'datadog' } })).items

describe('POST /v1/webhooks/datadog', () => {
  it('refuses bad credentials, stale timestamps and bad payloads with envelopes, creating nothing', async () => {
    const now = Math.floor(Date.now() / 1000)
    const cases: [string, () => Promise<unknown>, number, string][] = [
      ['no credential', () => collector.client.post('/v1/webhooks/datadog', alert()), 401, 'WEBHOOK_SIGNATURE_INVALID'],
      ['wrong HMAC secret', () => signed(alert(), undefined, 'another-secret-another-secret-xx'), 401, 'WEBHOOK_SIGNATURE_INVALID'],
      ['stale signature (6 min old)', () => signed(alert(), now - 360), 401, 'WEBHOOK_SIGNATURE_INVALID'],
      ['signature from the future', () => signed(alert(), now + 360), 401, 'WEBHOOK_SIGNATURE_INVALID'],
      [
        'body changed after signing',
        () =>
          collector.client.send('POST', '/v1/webhooks/datadog', {
            headers: { 'x-llmguard-signature': signDatadogPayload(SECRET, JSON.stringify(alert())) },
            body: alert(),
          }),
        401,
        'WEBHOOK_SIGNATURE_INVALID',
      ],
      ['malformed signature header', () => collector.client.send('POST', '/v1/webhooks/datadog', { headers: { 'x-llmguard-signature': 'v1=abc' }, body: alert() }), 401, 'WEBHOOK_SIGNATURE_INVALID'],
      ['wrong secret header', () => withSecret(alert(), 'nope'), 401, 'WEBHOOK_SIGNATURE_INVALID'],
      ['secret header with a stale date', () => withSecret(alert({ date: String(Date.now() - 6 * 60_000) })), 401, 'WEBHOOK_SIGNATURE_INVALID'],
      ['secret header without a date', () => withSecret(alert({ date: undefined })), 401, 'WEBHOOK_SIGNATURE_INVALID'],
      ['no project tag', () => signed(alert({ tags: 'env:prod' })), 400, 'VALIDATION_ERROR'],
      ['malformed project tag', () => signed(alert({ tags: 'llmguard_project:nope' })), 400, 'VALIDATION_ERROR'],
      // the install's secret says the alert came through a configured webhook; which project it
      // may act on takes that project's API key
      ['no API key', () => signed(alert(), undefined, SECRET, null), 401, 'UNAUTHORIZED'],
      ['unknown API key', () => signed(alert(), undefined, SECRET, `lg_${randomUUID()}`), 403, 'INVALID_API_KEY'],
      ['unknown project', () => signed(alert({ tags: `llmguard_project:${randomUUID()}` })), 403, 'FORBIDDEN'],
      ["another user's project tagged, with the secret and my key", () => withSecret(alert({ tags: `llmguard_project:${other.project.id}` })), 403, 'FORBIDDEN'],
      ["another user's project tagged, signed, with my key", () => signed(alert({ tags: `llmguard_project:${other.project.id}`, transition: 'Recovered' })), 403, 'FORBIDDEN'],
      ['missing monitorId', () => signed(alert({ monitorId: undefined })), 400, 'VALIDATION_ERROR'],
      // an object would have been "[object Object]", one id for every such alert
      ['an object for an id', () => signed(alert({ id: { a: 1 } })), 400, 'VALIDATION_ERROR'],
      ['an array for a monitorId', () => signed(alert({ monitorId: ['4242'] })), 400, 'VALIDATION_ERROR'],
      ['missing transition', () => signed(alert({ transition: '' })), 400, 'VALIDATION_ERROR'],
      ['date that is not a number', () => signed(alert({ date: 'today' })), 400, 'VALIDATION_ERROR'],
      ['date past what a Date holds', () => signed(alert({ date: '8640000000000001' })), 400, 'VALIDATION_ERROR'],
      ['date past what a Date holds, recovered', () => signed(alert({ date: '8640000000000001', transition: 'Recovered' })), 400, 'VALIDATION_ERROR'],
      [
        'malformed JSON (signed)',
        () => {
          const raw = '{"id": "x",'
          return collector.client.send('POST', '/v1/webhooks/datadog', { headers: { 'x-llmguard-signature': signDatadogPayload(SECRET, raw), 'content-type': 'application/json' }, body: undefined })
        },
        401, // the signature covers the exact bytes; an empty body does not match it
        'WEBHOOK_SIGNATURE_INVALID',
      ],
    ]
    for (const [name, call, status, code] of cases) {
      const err = await failure(call())
      expect([name, err.status, err.code]).toEqual([name, status, code])
    }
    expect(await count(collector, 'incidents')).toBe(0)
    expect(await count(collector, 'datadog_events')).toBe(0)
  })

  it('a signed alert opens an incident, a replay is a no-op, a new alert of the monitor counts, "Recovered" resolves it', async () => {
    const first = alert()
    const res = await signed(first)
    expect(res.status).toBe(200)
    expect(res.data.duplicate).toBe(false)
    expect(res.data.incident).toMatchObject({ type: 'datadog', key: '4242', severity: 'high', status: 'open', occurrences: 1, title: first.title })
    expect(res.data.incident!.metadata).toMatchObject({ link: first.link, priority: 'P2', transition: 'Triggered' })
    expect(res.data.incident!.firstSeenAt).toBe(new Date(Number(first.date)).toISOString())

    const replay = await signed(first)
    expect(replay.data).toEqual({ duplicate: true })
    expect((await incidents())[0]!.occurrences).toBe(1)

    await signed(alert({ transition: 'Re-Triggered', priority: 'P1' }))
    const [again] = await incidents()
    expect(again).toMatchObject({ id: res.data.incident!.id, occurrences: 2, severity: 'critical' })

    const recovered = await signed(alert({ transition: 'Recovered' }))
    expect(recovered.data.incident).toMatchObject({ id: again!.id, status: 'resolved' })
    expect((await incidents())[0]!.status).toBe('resolved')
    // recovering a monitor with nothing open is acknowledged and changes nothing
    const nothing = await signed(alert({ transition: 'Recovered', monitorId: '999' }))
    expect(nothing.data).toEqual({ duplicate: false, incident: null })
  })

  it('an alert delivered after a recovery of its monitor that is newer opens nothing; a later trigger does', async () => {
    const t0 = Date.now() - 60_000
    const opened = await signed(alert({ monitorId: 'late-1', date: String(t0) }))
    expect(opened.data.incident!.status).toBe('open')
    expect((await signed(alert({ monitorId: 'late-1', transition: 'Recovered', date: String(t0 + 30_000) }))).data.incident!.status).toBe('resolved')
    // a re-trigger from before the recovery, delivered late
    const late = await signed(alert({ monitorId: 'late-1', transition: 'Re-Triggered', date: String(t0 + 10_000) }))
    expect(late.data).toEqual({ duplicate: false, incident: null })
    const mine = async (monitor: string) => (await incidents()).filter((i) => i.key === monitor)
    expect((await mine('late-1')).map((i) => i.status)).toEqual(['resolved'])

    // the recovery arrives first, with nothing open yet, then the trigger it ended
    expect((await signed(alert({ monitorId: 'late-2', transition: 'Recovered', date: String(t0 + 30_000) }))).data).toEqual({ duplicate: false, incident: null })
    expect((await signed(alert({ monitorId: 'late-2', date: String(t0) }))).data).toEqual({ duplicate: false, incident: null })
    expect(await mine('late-2')).toEqual([])
    // another monitor's recovery is not this one's
    expect((await signed(alert({ monitorId: 'late-3', date: String(t0) }))).data.incident!.status).toBe('open')

    // the monitor triggers again after its recovery: a new incident
    const again = await signed(alert({ monitorId: 'late-2', date: String(Date.now()) }))
    expect(again.data.incident).toMatchObject({ key: 'late-2', status: 'open' })
  })

  it('a recovery delivered after a newer alert of its monitor leaves the incident open', async () => {
    const t0 = Date.now() - 120_000
    const monitorId = 'late-recovery'
    const opened = await signed(alert({ monitorId, date: String(t0) }))
    await signed(alert({ monitorId, transition: 'Re-Triggered', date: String(t0 + 60_000) }))
    // the recovery of the first episode, retried by Datadog, arrives last
    const stale = await signed(alert({ monitorId, transition: 'Recovered', date: String(t0 + 30_000) }))
    expect(stale.data).toEqual({ duplicate: false, incident: null })
    const [incident] = (await incidents()).filter((i) => i.key === monitorId)
    expect(incident).toMatchObject({ id: opened.data.incident!.id, status: 'open', occurrences: 2 })
    // the recovery after the last alert resolves it
    const recovered = await signed(alert({ monitorId, transition: 'Recovered', date: String(t0 + 90_000) }))
    expect(recovered.data.incident).toMatchObject({ id: opened.data.incident!.id, status: 'resolved' })
  })

  it('a trigger and its recovery arriving at the same moment leave no incident open', async () => {
    const t0 = Date.now() - 60_000
    const monitors = Array.from({ length: 40 }, (_, i) => `together-${i}`)
    await Promise.all(
      monitors.flatMap((monitorId) => [
        signed(alert({ monitorId, date: String(t0) })),
        signed(alert({ monitorId, transition: 'Recovered', date: String(t0 + 30_000) })),
      ]),
    )
    const [row] = await collector.sql<{ n: number }[]>`
      select count(*)::int as n from incidents
      where project_id = ${project.id} and type = 'datadog' and key like 'together-%' and status <> 'resolved'`
    expect(row!.n).toBe(0)
  })

  it('takes numeric ids (an unquoted $ID) as their digits', async () => {
    const res = await signed(alert({ id: 7_000_123, monitorId: 777 }))
    expect(res.data.incident).toMatchObject({ key: '777', metadata: { lastEventId: '7000123' } })
    expect((await signed(alert({ id: '7000123', monitorId: 777 }))).data).toEqual({ duplicate: true })
  })

  it('takes the receipt time for a signed alert dated in the future or over a day ago', async () => {
    for (const [monitorId, date] of [['future-1', Date.UTC(2200, 0, 1)], ['past-1', Date.now() - 3 * 86_400_000]] as const) {
      const before = Date.now()
      const res = await signed(alert({ monitorId, date: String(date) }))
      expect(res.status).toBe(200)
      const seen = Date.parse(res.data.incident!.lastSeenAt)
      expect(seen).toBeGreaterThanOrEqual(before - 1000)
      expect(seen).toBeLessThanOrEqual(Date.now() + 1000)
      expect(Date.parse(res.data.incident!.firstSeenAt)).toBe(seen)
    }
  })

  it("takes the severity from the monitor's priority ($ALERT_PRIORITY) over the event's ($PRIORITY: normal or low)", async () => {
    const normal = await signed(alert({ monitorId: 'prio-1', priority: 'normal', alertPriority: 'P1' }))
    expect(normal.data.incident).toMatchObject({ severity: 'critical', metadata: { priority: 'normal', alertPriority: 'P1' } })
    expect((await signed(alert({ monitorId: 'prio-2', priority: 'low', alertPriority: '' }))).data.incident!.severity).toBe('low')
    expect((await signed(alert({ monitorId: 'prio-3', priority: 'normal' }))).data.incident!.severity).toBe('medium')
  })

  it("alert ids are per project: another user's alert with the same id is no replay of mine", async () => {
    const id = randomUUID()
    const mine = await withSecret(alert({ id, monitorId: 'shared-id' }))
    expect(mine.data.duplicate).toBe(false)
    // the other user's webhook: their key, their tag, the same alert id
    const theirs = await withSecret(alert({ id, monitorId: 'shared-id', tags: `llmguard_project:${other.project.id}` }), SECRET, other.key)
    expect(theirs.data).toMatchObject({ duplicate: false, incident: { projectId: other.project.id } })
    expect((await withSecret(alert({ id, monitorId: 'shared-id' }))).data).toEqual({ duplicate: true })
  })

  it('the secret header (what Datadog UI sends) with the payload date works too', async () => {
    const res = await withSecret(alert({ monitorId: '7', priority: 'P4' }))
    expect(res.data.incident).toMatchObject({ key: '7', severity: 'low' })
    const replay = await withSecret(alert({ monitorId: '7', id: res.data.incident!.metadata.lastEventId }))
    expect(replay.data).toEqual({ duplicate: true })
  })

  it('answers 503 WEBHOOK_NOT_CONFIGURED without DATADOG_WEBHOOK_SECRET', async () => {
    const other = await startTestCollector()
    try {
      const err = await failure(other.client.post('/v1/webhooks/datadog', alert(), { headers: { 'x-llmguard-webhook-secret': SECRET } }))
      expect([err.status, err.code]).toEqual([503, 'WEBHOOK_NOT_CONFIGURED'])
      expect(await count(other, 'datadog_events')).toBe(0)
    } finally {
      await other.close()
    }
  })
})
