import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestCollector, type TestCollector } from '../../collector/test/helpers/collector.js'
import CollectorSeed from '../src/commands/collector/seed.js'
import IncidentsList from '../src/commands/incidents/list.js'
import IncidentsShow from '../src/commands/incidents/show.js'
import IncidentsResolve from '../src/commands/incidents/resolve.js'
import LogsSearch from '../src/commands/logs/search.js'
import LogsShow from '../src/commands/logs/show.js'
import LogsTail from '../src/commands/logs/tail.js'
import Metrics from '../src/commands/metrics.js'
import { run, tempConfigDir } from './helpers.js'

// what an app's end user can type into a prompt: a clipboard write (OSC 52), a window title
// (OSC 0), a clear screen, a colour, an 8-bit CSI (C1), a carriage return that overwrites a line
const CLIPBOARD = '\u001b]52;c;ZWNobyBwd25lZA==\u0007'
const TITLE = '\u001b]0;pwned\u0007'
const CLEAR = '\u001b[2J'
const PROMPT = `hello ${CLIPBOARD}${CLEAR}\u009b31m\rbye\nsecond line\tafter a tab`
const MODEL = `gpt-evil\u001b[31m${TITLE}`
/** Any C0 control but newline, DEL, or C1 control: the terminal would act on it. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/

let collector: TestCollector
let tmp: ReturnType<typeof tempConfigDir>
let apiKey: string
let requestId: string

beforeAll(async () => {
  collector = await startTestCollector()
  tmp = tempConfigDir()
  const seeded = await run<any>(CollectorSeed, ['--collector', collector.url, '--records', '3', '--email', `demo-${randomUUID()}@example.com`, '--json'])
  expect(seeded.exitCode).toBe(0)
  apiKey = seeded.json.apiKey
  // slow enough for a latency incident whose key and title hold the model's escapes
  requestId = (await collector.client.post<{ id: string }>('/v1/llm/requests', { prompt: PROMPT, response: `ok ${TITLE}\nline two`, model: MODEL, latency: 60_000, userId: `user${CLEAR}` }, { token: apiKey })).id
})
afterAll(async () => {
  await collector?.close()
  tmp?.cleanup()
})

describe('collector data on a terminal', () => {
  it('logs search shows escapes as \\xNN, and the table stays aligned around them', async () => {
    const r = await run(LogsSearch, ['--model', MODEL])
    expect(r.exitCode).toBe(0)
    expect(r.stdout).not.toMatch(CONTROL)
    const [header, row] = r.stdout.split('\n')
    expect(row).toContain('gpt-evil\\x1b[31m\\x1b]0;…')
    expect(row).toContain('hello \\x1b]52;c;ZWNobyBwd25lZA==\\x07')
    // the columns after the escaped model start where their headers do
    expect(row!.indexOf(' ok ') + 1).toBe(header!.indexOf('STATUS'))
    // --json is the data as it is (JSON escapes controls itself)
    expect((await run<any>(LogsSearch, ['--model', MODEL, '--json'])).json.items[0]).toMatchObject({ prompt: PROMPT, model: MODEL })
  })

  it('logs show keeps the prompt\'s lines and tabs, and nothing else of its controls', async () => {
    const r = await run(LogsShow, [requestId])
    expect(r.exitCode).toBe(0)
    expect(r.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/)
    expect(r.stdout).toContain(`\nhello \\x1b]52;c;ZWNobyBwd25lZA==\\x07\\x1b[2J\\x9b31m\\x0dbye\nsecond line\tafter a tab\n`)
    expect(r.stdout).toContain('\nok \\x1b]0;pwned\\x07\nline two')
    expect(r.stdout).toMatch(/user\s+user\\x1b\[2J\n/)
    expect(r.stdout).toMatch(/model\s+gpt-evil\\x1b\[31m\\x1b\]0;pwned\\x07\n/)
  })

  it('logs tail prints the record escaped', async () => {
    const tail = run(LogsTail, ['--lines', '0', '--count', '1', '--interval', '1'])
    await new Promise((resolve) => setTimeout(resolve, 300))
    await collector.client.post('/v1/llm/requests', { prompt: PROMPT, model: MODEL, latency: 5 }, { token: apiKey })
    const out = await tail
    expect(out.exitCode).toBe(0)
    expect(out.stdout).not.toMatch(CONTROL)
    expect(out.stdout).toContain('gpt-evil\\x1b[31m\\x1b]0;pwned\\x07')
    expect(out.stdout).toContain('hello \\x1b]52;c;')
  })

  it('metrics, incidents list, show and resolve show model names, keys and titles escaped', async () => {
    const metrics = await run(Metrics, ['--days', '2'])
    expect(metrics.stdout).not.toMatch(CONTROL)
    expect(metrics.stdout).toContain('gpt-evil\\x1b[31m\\x1b]0;pwned\\x07')
    const listed = await run<any>(IncidentsList, ['--type', 'latency', '--json'])
    const incident = listed.json.items.find((i: any) => i.key === MODEL)
    expect(incident.title).toContain(TITLE)
    const list = await run(IncidentsList, ['--type', 'latency'])
    expect(list.stdout).not.toMatch(CONTROL)
    expect(list.stdout).toContain('gpt-evil\\x1b[31m')
    const [header, row] = list.stdout.split('\n')
    expect(row!.indexOf(' just now') + 1).toBe(header!.indexOf('LAST'))
    const show = await run(IncidentsShow, [incident.id])
    expect(show.stdout).not.toMatch(CONTROL)
    expect(show.stdout).toMatch(/title\s+Latency above .* on gpt-evil\\x1b\[31m\\x1b\]0;pwned\\x07 /)
    const resolved = await run(IncidentsResolve, [incident.id])
    expect(resolved.stdout).not.toMatch(CONTROL)
    expect(resolved.stdout).toContain('resolved: Latency above')
  })
})
