import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import OpenAI from 'openai'
import { z } from 'zod'
import { startFakeCollector, type FakeCollector } from './fakes/collector-server.js'
import { startFakeOpenAI, type FakeOpenAI } from './fakes/openai-server.js'
import { makeGuard, openaiClient, storedRecords, tempDir } from './helpers.js'
import { withContext, type LLMGuard } from '../src/index.js'

let fake: FakeOpenAI
let collector: FakeCollector
let tmp: ReturnType<typeof tempDir>
let guard: LLMGuard
let openai: OpenAI

beforeAll(async () => {
  fake = await startFakeOpenAI()
  collector = await startFakeCollector()
})
afterAll(async () => {
  await fake.close()
  await collector.close()
})
beforeEach(() => {
  tmp = tempDir()
  collector.stored.clear()
  fake.requests.length = 0
  fake.script.length = 0
  fake.streamChunkDelayMs = 0
  fake.streamFailAfter = undefined
  fake.streamFailMessage = 'the model broke off'
  ;({ guard } = makeGuard(collector, tmp.dir, { policy: false }))
  openai = guard.wrap(openaiClient(fake))
})
afterEach(async () => {
  await guard.shutdown()
  expect(guard.timersPending).toBe(0)
  tmp.cleanup()
})

async function flushed(): Promise<Record<string, any>[]> {
  await guard.flush()
  return storedRecords(collector)
}

describe('non-streaming calls', () => {
  it('records a chat completion with prompt, response, tokens and returns the untouched result', async () => {
    const res = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'Say hello' }] },
      ],
    })
    expect(res.choices[0]!.message.content).toBe('Hello from the fake')
    expect(res._request_id).toBe('req_123')
    const [r] = await flushed()
    expect(r).toMatchObject({
      prompt: 'system: Be brief.\nuser: Say hello',
      response: 'Hello from the fake',
      model: 'gpt-4o-mini',
      endpoint: 'chat.completions',
      status: 'success',
      stream: false,
      promptTokens: 12,
      completionTokens: 5,
      tokens: 17,
      cachedTokens: 4,
      reasoningTokens: 2,
    })
    expect(r!.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(r!.latency).toBeGreaterThanOrEqual(0)
    expect(Date.parse(r!.timestamp)).toBeGreaterThan(Date.now() - 60_000)
    expect(JSON.stringify(r)).not.toContain('sk-test-secret-key-123')
  })

  it('keeps withResponse() and asResponse() working', async () => {
    const { data, response, request_id } = await openai.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse()
    expect(data.choices[0]!.message.content).toBe('Hello from the fake')
    expect(response.status).toBe(200)
    expect(request_id).toBe('req_123')

    const raw = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'raw' }] }).asResponse()
    const body = (await raw.json()) as { choices: { message: { content: string } }[] }
    expect(body.choices[0]!.message.content).toBe('Hello from the fake')
    // a raw read is recorded (without the body, which is the caller's) a macrotask after the headers
    await new Promise((r) => setImmediate(r))
    const records = await flushed()
    expect(records).toHaveLength(2)
    expect(records.find((r) => r.prompt === 'user: raw')).toMatchObject({ status: 'success', response: '' })
  })

  it('records the answer of a call the app awaits only after other work', async () => {
    const later = openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'later' }] })
    // the headers arrive meanwhile, and nobody has asked for the body yet
    await new Promise((r) => setTimeout(r, 400))
    const res = await later
    expect(res.choices[0]!.message.content).toBe('Hello from the fake')
    const laterStream = openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'later stream' }], stream: true })
    await new Promise((r) => setTimeout(r, 150))
    let text = ''
    for await (const chunk of await laterStream) text += chunk.choices[0]?.delta.content ?? ''
    expect(text).toBe('Hello there')
    const records = await flushed()
    const awaitedLate = records.find((r) => r.prompt === 'user: later')!
    expect(awaitedLate).toMatchObject({ response: 'Hello from the fake', tokens: 17, promptTokens: 12 })
    // the call's own time, not the app's 400 ms of other work before its await
    expect(awaitedLate.latency).toBeLessThan(300)
    const streamed = records.find((r) => r.prompt === 'user: later stream')!
    expect(streamed).toMatchObject({ response: 'Hello there', stream: true })
    expect(streamed.timeToFirstToken).toBeGreaterThanOrEqual(0)
  })

  it('records embeddings (base64 decoded for the caller) and completions', async () => {
    const emb = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] })
    expect(emb.data[0]!.embedding).toEqual([0.25, -0.5, 1])
    const cmp = await openai.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Once upon' })
    expect(cmp.choices[0]!.text).toBe('Hello from the fake')
    const records = await flushed()
    expect(records.find((r) => r.endpoint === 'embeddings')).toMatchObject({ prompt: 'a\nb', response: '', promptTokens: 6, tokens: 6 })
    expect(records.find((r) => r.endpoint === 'completions')).toMatchObject({ prompt: 'Once upon', response: 'Hello from the fake', tokens: 7 })
  })

  it('records responses.create with instructions and output_text', async () => {
    const res = await openai.responses.create({ model: 'gpt-4.1', instructions: 'Be nice', input: 'What is up?' })
    expect(res.output_text).toBe('Hello from the fake')
    const [r] = await flushed()
    expect(r).toMatchObject({ endpoint: 'responses', prompt: 'system: Be nice\nuser: What is up?', response: 'Hello from the fake', promptTokens: 9, completionTokens: 3, tokens: 12 })
  })

  it('records the helpers: chat.completions.parse and responses.parse', async () => {
    const Answer = z.object({ answer: z.string() })
    const { zodResponseFormat, zodTextFormat } = await import('openai/helpers/zod')
    const parsed = await openai.chat.completions.parse({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'json please' }],
      response_format: zodResponseFormat(Answer, 'answer'),
    })
    expect(parsed.choices[0]!.message.parsed).toEqual({ answer: 'ok' })
    const rparsed = await openai.responses.parse({ model: 'gpt-4.1', input: 'json', text: { format: zodTextFormat(Answer, 'answer') } })
    expect(rparsed.output_parsed).toEqual({ answer: 'ok' })
    const records = await flushed()
    expect(records.map((r) => r.endpoint).sort()).toEqual(['chat.completions', 'responses'])
    expect(records.find((r) => r.endpoint === 'chat.completions')!.response).toBe('{"answer":"ok"}')
  })

  it('takes userId and metadata per call, per wrap, and from the body user field', async () => {
    guard.wrap(openai, { userId: 'wrap-user', metadata: { app: 'test' } })
    await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'a' }] })
    await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'b' }] }, withContext({ userId: 'call-user', metadata: { route: '/x' } }))
    guard.wrap(openai, undefined)
    await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'c' }], user: 'body-user' })
    const records = await flushed()
    const by = (p: string) => records.find((r) => r.prompt === `user: ${p}`)!
    expect(by('a')).toMatchObject({ userId: 'wrap-user', metadata: { app: 'test' } })
    expect(by('b')).toMatchObject({ userId: 'call-user', metadata: { app: 'test', route: '/x' } })
    expect(by('c')).toMatchObject({ userId: 'body-user' })
    // the context never reaches OpenAI
    expect(JSON.stringify(fake.requests.map((r) => r.body))).not.toContain('call-user')
  })
})

describe('errors', () => {
  it.each([
    [400, OpenAI.BadRequestError, 'invalid_request_error'],
    [429, OpenAI.RateLimitError, 'rate_limit_exceeded'],
    [500, OpenAI.InternalServerError, 'server_error'],
  ])('records a %i and rethrows the same error', async (status, Cls, type) => {
    fake.script.push({ status, errorType: type, message: `boom ${status}` })
    const err = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(Cls)
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(status)
    const [r] = await flushed()
    expect(r).toMatchObject({ status: 'error', error: { status, type, message: expect.stringContaining(`boom ${status}`) }, response: '' })
  })

  it('keeps the client\'s API key out of a recorded error that echoes it (a proxy may), and leaves the caller\'s error as it was', async () => {
    const key = 'sk-test-secret-key-123'
    fake.script.push({ status: 401, errorType: 'invalid_api_key', message: `Invalid key ${key}; keys look like ${key}` })
    const err = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'k' }] }).catch((e: unknown) => e)
    expect((err as Error).message).toContain(key)
    fake.streamFailAfter = 1
    fake.streamFailMessage = `upstream refused ${key}`
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'ks' }], stream: true })
    await expect((async () => {
      for await (const _ of stream) void _
    })()).rejects.toThrow(key)
    const records = await flushed()
    expect(records).toHaveLength(2)
    expect(records.find((r) => r.prompt === 'user: k')!.error).toMatchObject({ status: 401, message: '401 Invalid key [redacted]; keys look like [redacted]' })
    expect(records.find((r) => r.prompt === 'user: ks')!.error.message).toContain('upstream refused [redacted]')
    expect(JSON.stringify(records)).not.toContain(key)
  })

  it('records a timeout and rethrows APIConnectionTimeoutError', async () => {
    const client = guard.wrap(openaiClient(fake, { timeout: 150 }))
    fake.script.push({ hang: true })
    const err = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'slow' }] }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(OpenAI.APIConnectionTimeoutError)
    const [r] = await flushed()
    expect(r).toMatchObject({ status: 'error', error: { type: 'APIConnectionTimeoutError' } })
    expect(r!.latency).toBeGreaterThanOrEqual(140)
  })
})

describe('streams', () => {
  it('records a chat stream with text and time to first token, and does not inject usage', async () => {
    fake.streamChunkDelayMs = 15
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'stream' }], stream: true })
    expect(stream).toBeInstanceOf((await import('openai/streaming')).Stream)
    expect(stream.controller).toBeInstanceOf(AbortController)
    let text = ''
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
    expect(text).toBe('Hello there')
    expect(fake.requests.at(-1)!.body.stream_options).toBeUndefined()
    const [r] = await flushed()
    expect(r).toMatchObject({ stream: true, response: 'Hello there', status: 'success', tokens: 0 })
    expect(r!.timeToFirstToken).toBeGreaterThanOrEqual(10)
    expect(r!.latency).toBeGreaterThanOrEqual(r!.timeToFirstToken)
  })

  it('records usage when the caller asked for it', async () => {
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'u' }], stream: true, stream_options: { include_usage: true },
    })
    for await (const _ of stream) void _
    const [r] = await flushed()
    expect(r).toMatchObject({ promptTokens: 12, completionTokens: 5, tokens: 17 })
  })

  it('keeps tee() and toReadableStream() working and records once', async () => {
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 't' }], stream: true })
    const [a, b] = stream.tee()
    const read = async (s: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) => {
      let t = ''
      for await (const c of s) t += c.choices[0]?.delta.content ?? ''
      return t
    }
    expect(await Promise.all([read(a), read(b)])).toEqual(['Hello there', 'Hello there'])
    const s2 = await openai.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'p', stream: true })
    const reader = s2.toReadableStream().getReader()
    let lines = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      lines += new TextDecoder().decode(value)
    }
    expect(lines.trim().split('\n')).toHaveLength(3)
    const records = await flushed()
    expect(records).toHaveLength(2)
    expect(records.find((r) => r.endpoint === 'completions')).toMatchObject({ response: 'Hello there', stream: true })
  })

  it('records the stream helpers: chat.completions.stream and responses.stream', async () => {
    const runner = openai.chat.completions.stream({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'helper' }] })
    const final = await runner.finalChatCompletion()
    expect(final.choices[0]!.message.content).toBe('Hello there')
    const rs = openai.responses.stream({ model: 'gpt-4.1', input: 'rs' })
    const deltas: string[] = []
    rs.on('response.output_text.delta', (e) => deltas.push(e.delta))
    const finalResp = await rs.finalResponse()
    expect(deltas.join('')).toBe('Hello there')
    expect(finalResp.output_text).toBe('Hello there')
    const records = await flushed()
    expect(records.find((r) => r.endpoint === 'chat.completions')).toMatchObject({ response: 'Hello there', stream: true })
    expect(records.find((r) => r.endpoint === 'responses')).toMatchObject({ response: 'Hello there', stream: true, tokens: 12 })
  })

  it('records what arrived when the caller breaks out or aborts', async () => {
    fake.streamChunkDelayMs = 20
    fake.streamChunks = ['one ', 'two ', 'three ', 'four']
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'brk' }], stream: true })
    let got = ''
    for await (const c of stream) {
      got += c.choices[0]?.delta.content ?? ''
      if (got.includes('two')) break
    }
    expect(stream.controller.signal.aborted).toBe(true)
    const s2 = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'abt' }], stream: true })
    let got2 = ''
    for await (const c of s2) {
      got2 += c.choices[0]?.delta.content ?? ''
      if (got2.includes('one')) s2.controller.abort()
    }
    fake.streamChunks = ['Hel', 'lo', ' there']
    const records = await flushed()
    const brk = records.find((r) => r.prompt === 'user: brk')!
    expect(brk).toMatchObject({ response: 'one two ', status: 'success', metadata: { llmguardAborted: true } })
    const abt = records.find((r) => r.prompt === 'user: abt')!
    expect(abt.response.startsWith('one')).toBe(true)
    expect(abt.metadata).toEqual({ llmguardAborted: true })
  })
})

describe('a stream the server breaks off', () => {
  it('is recorded as an error with what arrived, not as stopped by the caller', async () => {
    fake.streamFailAfter = 1
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'broken' }], stream: true })
    let got = ''
    const err = await (async () => {
      for await (const c of stream) got += c.choices[0]?.delta.content ?? ''
    })().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(OpenAI.APIError)
    expect(got).toBe('Hel')
    const [r] = await flushed()
    expect(r).toMatchObject({ status: 'error', response: 'Hel', error: { message: expect.stringContaining('the model broke off') } })
    expect(r!.metadata?.llmguardAborted).toBeUndefined()
  })
})

describe('wrapping again', () => {
  it('a client wrapped by a guard since shut down records to the new guard, once per call', async () => {
    const client = openaiClient(fake)
    const old = makeGuard(collector, tmp.dir, { policy: false, outbox: `${tmp.dir}/old.sqlite` }).guard
    old.wrap(client)
    await old.shutdown()
    guard.wrap(client)
    guard.wrap(client)
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'rewrapped' }] })
    const records = await flushed()
    expect(records.filter((r) => r.prompt === 'user: rewrapped')).toHaveLength(1)
  })

  it('says once when what it was given is not an openai client, and hands it back untouched', async () => {
    const made = makeGuard(collector, tmp.dir, { policy: false, outbox: `${tmp.dir}/notaclient.sqlite` })
    const client = openaiClient(fake)
    const chat = client.chat
    const create = chat.completions.create
    expect(made.guard.wrap(chat)).toBe(chat)
    expect(made.guard.wrap({})).toEqual({})
    // wrapping a part of the client patches nothing of it
    expect(chat.completions.create).toBe(create)
    const said = made.warnings.filter((w) => w.startsWith('wrap(): '))
    expect(said).toEqual(['wrap(): this is not an openai client (it has no chat.completions.create); pass the client itself (new OpenAI()), not a part of it: nothing from this object is recorded'])
    made.guard.wrap(client)
    expect(made.warnings.filter((w) => w.startsWith('wrap(): '))).toHaveLength(1)
    await made.guard.shutdown()
  })
})

describe('guard.record', () => {
  it('logs another provider by hand and refuses an invalid record without throwing', async () => {
    const id = guard.record({ prompt: 'hi claude', response: 'hello', model: 'claude-3-5-sonnet', latency: 120, promptTokens: 3, completionTokens: 2, endpoint: 'anthropic.messages' })
    expect(id).toMatch(/^[0-9a-f-]{36}$/)
    expect(guard.record({ prompt: 'x', model: '', latency: -1 })).toBeUndefined()
    const records = await flushed()
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({ id, model: 'claude-3-5-sonnet', tokens: 5, endpoint: 'anthropic.messages' })
    expect(guard.stats()).toMatchObject({ sent: 1, rejected: 1, queued: 0 })
  })

  it('counts anything that is not a valid record as rejected, with one warning, whatever plain JavaScript passes', async () => {
    const made = makeGuard(collector, `${tmp.dir}/own`, { policy: false })
    try {
      for (const bad of [null, undefined, 'text', [], { prompt: 42, model: 'm', latency: 1 }, { prompt: 'p', response: 42, model: 'm', latency: 1 }, { prompt: 'p', model: 'm', latency: 1, metadata: 'x' }]) {
        expect(made.guard.record(bad as never)).toBeUndefined()
      }
      expect(made.guard.stats()).toMatchObject({ rejected: 7, queued: 0, lastError: null })
      expect(made.warnings.filter((w) => w.startsWith('guard.record(): '))).toHaveLength(1)
      expect(made.warnings.filter((w) => w.includes('internal error'))).toEqual([])
    } finally {
      await made.guard.shutdown()
    }
  })
})
