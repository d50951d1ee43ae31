/**
 * What the wrapper records and enforces across openai v6's less common shapes: derived clients
 * (withOptions), the responses API's system prompt, failures a stream reports as events, tool
 * calls and refusals in streams, and a stream iterated twice. A scripted loopback server serves
 * the shapes the shared fake does not.
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import OpenAI from 'openai'
import { DEFAULT_POLICY, type Policy } from '@llmguard/shared'
import { startFakeCollector, type FakeCollector } from './fakes/collector-server.js'
import { startFakeOpenAI, type FakeOpenAI } from './fakes/openai-server.js'
import { makeGuard, openaiClient, storedRecords, tempDir } from './helpers.js'
import { LLMGuardBlockedError, type LLMGuard } from '../src/index.js'

let fake: FakeOpenAI
let collector: FakeCollector
let tmp: ReturnType<typeof tempDir>
let guard: LLMGuard

type Handler = (body: Record<string, unknown>, res: ServerResponse) => void
let handler: Handler = (_b, res) => res.writeHead(500).end()
let scriptedURL = ''
const scripted = createServer((req, res) => {
  let raw = ''
  req.on('data', (c) => (raw += c))
  req.on('end', () => handler(raw ? JSON.parse(raw) : {}, res))
})
function sse(res: ServerResponse, events: { event?: string; data: unknown }[], done: boolean) {
  res.writeHead(200, { 'content-type': 'text/event-stream' })
  for (const e of events) res.write(`${e.event ? `event: ${e.event}\n` : ''}data: ${JSON.stringify(e.data)}\n\n`)
  res.end(done ? 'data: [DONE]\n\n' : '')
}
const json = (res: ServerResponse, v: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(v))
/** A responses event of `type` with its data. */
const ev = (type: string, data: Record<string, unknown>, n: number) => ({ event: type, data: { type, sequence_number: n, ...data } })
const response = (status: string, output: unknown[]) => ({ id: 'r', object: 'response', created_at: 1, status, model: 'm', output, usage: null })

beforeAll(async () => {
  fake = await startFakeOpenAI()
  collector = await startFakeCollector()
  await new Promise<void>((r) => scripted.listen(0, '127.0.0.1', r))
  scriptedURL = `http://127.0.0.1:${(scripted.address() as AddressInfo).port}/v1`
})
afterAll(async () => {
  await fake.close()
  await collector.close()
  scripted.closeAllConnections()
  await new Promise((r) => scripted.close(r))
})
beforeEach(() => {
  tmp = tempDir()
  collector.policy = { ...DEFAULT_POLICY }
  collector.stored.clear()
  fake.requests.length = 0
})
afterEach(async () => {
  await guard?.shutdown()
  tmp.cleanup()
})

async function wrapped(p: Partial<Policy> = {}, baseURL?: string): Promise<OpenAI> {
  collector.setPolicy(p)
  ;({ guard } = makeGuard(collector, tmp.dir))
  await guard.refreshPolicy()
  return guard.wrap(baseURL ? new OpenAI({ apiKey: 'sk-x', baseURL, maxRetries: 0 }) : openaiClient(fake))
}
async function records(): Promise<Record<string, any>[]> {
  await guard.flush()
  return storedRecords(collector)
}
const byPrompt = (rs: Record<string, any>[], prompt: string) => rs.find((r) => r.prompt === prompt)!

describe('a client derived with withOptions()', () => {
  it('is guarded like the wrapped one: the policy applies and its calls are recorded', async () => {
    const openai = await wrapped({ disabledEndpoints: ['embeddings'] })
    const derived = openai.withOptions({ timeout: 5_000 })
    await expect(derived.embeddings.create({ model: 'e', input: 'x' })).rejects.toBeInstanceOf(LLMGuardBlockedError)
    await derived.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'derived' }] })
    // and a client derived from that one
    await derived.withOptions({ maxRetries: 0 }).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'twice derived' }] })
    const rs = await records()
    expect(byPrompt(rs, 'user: derived').status).toBe('success')
    expect(byPrompt(rs, 'user: twice derived').status).toBe('success')
    expect(fake.requests.filter((r) => r.path === '/v1/embeddings')).toHaveLength(0)
  })
})

describe('defaults of a derived client wrapped on its own', () => {
  it("are its own: the parent keeps its defaults", async () => {
    await wrapped()
    const parent = guard.wrap(openaiClient(fake), { userId: 'parent-user' })
    const child = guard.wrap(parent.withOptions({ timeout: 5_000 }), { userId: 'child-user' })
    await parent.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'from parent' }] })
    await child.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'from child' }] })
    const rs = await records()
    expect(byPrompt(rs, 'user: from parent').userId).toBe('parent-user')
    expect(byPrompt(rs, 'user: from child').userId).toBe('child-user')
  })
})

describe('a derived client after its parent is wrapped by a new guard', () => {
  it('moves to the new guard with its parent, keeping its own defaults', async () => {
    await wrapped()
    const first = guard
    const parent = first.wrap(openaiClient(fake), { userId: 'parent-user' })
    const child = first.wrap(parent.withOptions({ timeout: 5_000 }), { userId: 'child-user' })
    await first.shutdown()
    ;({ guard } = makeGuard(collector, tmp.dir))
    guard.wrap(parent, { userId: 'parent-user' })
    await child.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'child after' }] })
    const rs = await records()
    expect(byPrompt(rs, 'user: child after').userId).toBe('child-user')
  })
})

describe("the policy's system prompt on the responses API", () => {
  it("replaces the app's system and developer messages in input, as on chat", async () => {
    const openai = await wrapped({ systemPrompt: 'POLICY' })
    const input = [
      { role: 'developer' as const, content: 'APP SYSTEM' },
      { role: 'system' as const, content: 'APP SYSTEM TOO' },
      { role: 'user' as const, content: 'q' },
    ]
    await openai.responses.create({ model: 'm', input })
    const sent = fake.requests.find((r) => r.path === '/v1/responses')!.body
    expect(sent.instructions).toBe('POLICY')
    expect(sent.input).toEqual([{ role: 'user', content: 'q' }])
    expect(input).toHaveLength(3) // the caller's own array is untouched
  })
})

describe('a responses stream that reports its failure as an event', () => {
  it.each([
    ['an error event', [ev('response.output_text.delta', { item_id: 'm', output_index: 0, content_index: 0, delta: 'Hel' }, 1), ev('error', { code: 'server_error', message: 'the model broke off', param: null }, 2)], 'server_error', 'the model broke off'],
    ['response.failed', [ev('response.failed', { response: { ...response('failed', []), error: { code: 'server_error', message: 'failed upstream' } } }, 1)], 'server_error', 'failed upstream'],
  ])('is recorded as an error: %s', async (_name, events, type, message) => {
    handler = (_b, res) => sse(res, [ev('response.created', { response: response('in_progress', []) }, 0), ...events], false)
    const openai = await wrapped({}, scriptedURL)
    const stream = await openai.responses.create({ model: 'm', input: 'x', stream: true })
    for await (const _ of stream) void _ // openai hands these events to the caller; nothing is thrown
    const [r] = await records()
    expect(r).toMatchObject({ status: 'error', error: { type, message } })
  })
})

describe('tool calls and refusals', () => {
  const fc = { id: 'fc_1', type: 'function_call', status: 'completed', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }
  const msg = { id: 'msg', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Checking.', annotations: [] }] }
  const refusal = { id: 'msg2', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'refusal', refusal: 'I cannot help' }] }

  it('a responses call records its text and its tool calls, streamed or not, with the time to the first token', async () => {
    handler = (body, res) => {
      if (!body.stream) return json(res, response('completed', body.input === 'refuse' ? [refusal] : [msg, fc]))
      if (body.input === 'refuse stream') {
        return sse(res, [ev('response.created', { response: response('in_progress', []) }, 0), ev('response.refusal.delta', { item_id: 'msg2', output_index: 0, content_index: 0, delta: 'I cannot help' }, 1), ev('response.completed', { response: response('completed', [refusal]) }, 2)], false)
      }
      sse(res, [
        ev('response.created', { response: response('in_progress', []) }, 0),
        ev('response.output_text.delta', { item_id: 'msg', output_index: 0, content_index: 0, delta: 'Checking.' }, 1),
        ev('response.output_item.added', { output_index: 1, item: { ...fc, arguments: '', status: 'in_progress' } }, 2),
        ev('response.function_call_arguments.delta', { item_id: 'fc_1', output_index: 1, delta: '{"city":"Paris"}' }, 3),
        ev('response.completed', { response: response('completed', [msg, fc]) }, 4),
      ], false)
    }
    const openai = await wrapped({}, scriptedURL)
    await openai.responses.create({ model: 'm', input: 'plain' })
    await openai.responses.create({ model: 'm', input: 'refuse' })
    for await (const _ of await openai.responses.create({ model: 'm', input: 'streamed', stream: true })) void _
    for await (const _ of await openai.responses.create({ model: 'm', input: 'refuse stream', stream: true })) void _
    const rs = await records()
    const both = 'Checking.\n[tool call get_weather({"city":"Paris"})]'
    expect(byPrompt(rs, 'user: plain').response).toBe(both)
    expect(byPrompt(rs, 'user: streamed').response).toBe(both)
    expect(byPrompt(rs, 'user: streamed').timeToFirstToken).toBeGreaterThanOrEqual(0)
    expect(byPrompt(rs, 'user: refuse').response).toBe('I cannot help')
    expect(byPrompt(rs, 'user: refuse stream').response).toBe('I cannot help')
  })

  it('a streamed chat call records its tool calls as the non-streamed one does', async () => {
    const tc = (args: string) => ({ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: args } })
    handler = (body, res) => {
      if (!body.stream) {
        return json(res, { id: 'c', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'Let me look.', refusal: null, tool_calls: [tc('{"city":"Paris"}')] }, finish_reason: 'tool_calls', logprobs: null }] })
      }
      const chunk = (delta: unknown, finish: string | null = null) => ({ data: { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] } })
      sse(res, [
        chunk({ role: 'assistant', content: 'Let me look.' }),
        chunk({ tool_calls: [{ index: 0, ...tc('') }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
        chunk({}, 'tool_calls'),
      ], true)
    }
    const openai = await wrapped({}, scriptedURL)
    await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'plain' }] })
    for await (const _ of await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'streamed' }], stream: true })) void _
    const rs = await records()
    expect(byPrompt(rs, 'user: plain').response).toBe('Let me look.\n[tool call get_weather({"city":"Paris"})]')
    expect(byPrompt(rs, 'user: streamed').response).toBe(byPrompt(rs, 'user: plain').response)
  })

  it('several choices, one of them empty, give the same text streamed or not', async () => {
    const choice = (index: number, content: string) => ({ index, message: { role: 'assistant', content, refusal: null }, finish_reason: 'stop', logprobs: null })
    handler = (body, res) => {
      if (!body.stream) return json(res, { id: 'c', object: 'chat.completion', created: 1, model: 'm', choices: [choice(0, 'A'), choice(1, ''), choice(2, 'C')] })
      const chunk = (index: number, delta: unknown, finish: string | null = null) => ({ data: { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index, delta, finish_reason: finish }] } })
      sse(res, [chunk(0, { role: 'assistant', content: 'A' }), chunk(1, { role: 'assistant', content: '' }), chunk(2, { role: 'assistant', content: 'C' }), chunk(0, {}, 'stop')], true)
    }
    const openai = await wrapped({}, scriptedURL)
    await openai.chat.completions.create({ model: 'm', n: 3, messages: [{ role: 'user', content: 'plain' }] })
    for await (const _ of await openai.chat.completions.create({ model: 'm', n: 3, messages: [{ role: 'user', content: 'streamed' }], stream: true })) void _
    const rs = await records()
    expect(byPrompt(rs, 'user: plain').response).toBe('A\n\nC')
    expect(byPrompt(rs, 'user: streamed').response).toBe('A\n\nC')
  })

  it("a responses input's custom tool calls and their outputs are in the prompt (and so scored)", async () => {
    const openai = await wrapped()
    await openai.responses.create({
      model: 'm',
      input: [
        { role: 'user', content: 'look' },
        { type: 'custom_tool_call', call_id: 'c2', name: 'grammar', input: 'CUSTOM-IN' },
        { type: 'custom_tool_call_output', call_id: 'c2', output: 'CUSTOM-OUT' },
      ] as never,
    })
    const [r] = await records()
    expect(r!.prompt).toBe('user: look\nassistant: [tool call grammar(CUSTOM-IN)]\ntool: CUSTOM-OUT')
  })
})

describe('a stream iterated a second time', () => {
  it('keeps one record of the call (the second pass fails in openai, not in the call)', async () => {
    const openai = await wrapped()
    const stream = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'twice' }], stream: true })
    for await (const _ of stream) void _
    await expect((async () => { for await (const _ of stream) void _ })()).rejects.toThrow(/consumed/)
    const rs = (await records()).filter((r) => r.prompt === 'user: twice')
    expect(rs).toHaveLength(1)
    expect(rs[0]!.status).toBe('success')
  })
})
