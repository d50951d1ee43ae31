import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One scripted answer instead of the normal one. */
export interface FakeReply {
  status?: number
  /** error body type/message for status ≥ 400 */
  errorType?: string
  message?: string
  headers?: Record<string, string>
  /** wait before answering (or forever, for a client timeout) */
  delayMs?: number
  hang?: boolean
}

export interface FakeOpenAI {
  /** baseURL for the openai client */
  baseURL: string
  requests: { path: string; body: Record<string, any>; headers: IncomingMessage['headers'] }[]
  /** Next answers, in order, before the normal behaviour resumes. */
  script: FakeReply[]
  /** Text pieces a streaming answer sends, and the pause between them. */
  streamChunks: string[]
  streamChunkDelayMs: number
  /** A chat stream breaks off with an error event after this many text pieces (undefined: never). */
  streamFailAfter: number | undefined
  /** The message of that error event. */
  streamFailMessage: string
  reply: string
  /** Keep a record of requests (off for the benchmark). */
  keepRequests: boolean
  close(): Promise<void>
}

const usageChat = { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17, prompt_tokens_details: { cached_tokens: 4, audio_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 2, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 } }

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A loopback stand-in for the OpenAI API with the real response and SSE chunk shapes. */
export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  const sockets = new Set<import('node:net').Socket>()
  const fake: FakeOpenAI = {
    baseURL: '',
    requests: [],
    script: [],
    streamChunks: ['Hel', 'lo', ' there'],
    streamChunkDelayMs: 0,
    streamFailAfter: undefined,
    streamFailMessage: 'the model broke off',
    reply: 'Hello from the fake',
    keepRequests: true,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }

  const server: Server = createServer(async (req, res) => {
    const raw = await readBody(req)
    const body = raw ? (JSON.parse(raw) as Record<string, any>) : {}
    const path = (req.url ?? '').split('?')[0]!
    if (fake.keepRequests) fake.requests.push({ path, body, headers: req.headers })
    const scripted = fake.script.shift()
    if (scripted?.hang) return
    if (scripted?.delayMs) await sleep(scripted.delayMs)
    if (scripted?.status && scripted.status >= 400) {
      res.writeHead(scripted.status, { 'content-type': 'application/json', 'x-request-id': 'req_err', ...scripted.headers })
      res.end(JSON.stringify({ error: { message: scripted.message ?? 'fake failure', type: scripted.errorType ?? 'server_error', param: null, code: null } }))
      return
    }
    try {
      await route(fake, path, body, res)
    } catch (err) {
      if (!res.headersSent) res.writeHead(500)
      res.end(String(err))
    }
  })
  server.keepAliveTimeout = 5000
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  fake.baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
  return fake
}

function json(res: ServerResponse, value: unknown): void {
  const s = JSON.stringify(value)
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), 'x-request-id': 'req_123' })
  res.end(s)
}

async function sse(fake: FakeOpenAI, res: ServerResponse, events: { event?: string; data: unknown }[]): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-request-id': 'req_stream' })
  for (const e of events) {
    if (res.destroyed) return
    res.write(`${e.event ? `event: ${e.event}\n` : ''}data: ${JSON.stringify(e.data)}\n\n`)
    if (fake.streamChunkDelayMs) await sleep(fake.streamChunkDelayMs)
  }
  if (!res.destroyed) res.end('data: [DONE]\n\n')
}

async function route(fake: FakeOpenAI, path: string, body: Record<string, any>, res: ServerResponse): Promise<void> {
  const created = Math.floor(Date.now() / 1000)
  const model = body.model ?? 'gpt-4o-mini'
  if (path === '/v1/chat/completions') {
    const jsonMode = body.response_format?.type === 'json_schema'
    const content = jsonMode ? JSON.stringify({ answer: 'ok' }) : fake.reply
    if (!body.stream) {
      return json(res, {
        id: 'chatcmpl-1', object: 'chat.completion', created, model,
        choices: [{ index: 0, message: { role: 'assistant', content, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
        usage: usageChat, service_tier: 'default', system_fingerprint: 'fp_fake',
      })
    }
    const base = { id: 'chatcmpl-s', object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_fake' }
    const pieces = jsonMode ? [content] : fake.streamChunks
    const events: { data: unknown }[] = [
      { data: { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }] } },
      ...pieces.map((p) => ({ data: { ...base, choices: [{ index: 0, delta: { content: p }, logprobs: null, finish_reason: null }] } })),
      { data: { ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] } },
    ]
    if (body.stream_options?.include_usage) events.push({ data: { ...base, choices: [], usage: usageChat } })
    if (fake.streamFailAfter !== undefined) {
      // what a server that fails mid-answer sends: an error in place of the next chunk
      const broken = [...events.slice(0, 1 + fake.streamFailAfter), { data: { error: { message: fake.streamFailMessage, type: 'server_error' } } }]
      return sse(fake, res, broken)
    }
    return sse(fake, res, events)
  }
  if (path === '/v1/completions') {
    const usage = { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }
    if (!body.stream) {
      return json(res, { id: 'cmpl-1', object: 'text_completion', created, model, choices: [{ text: fake.reply, index: 0, logprobs: null, finish_reason: 'stop' }], usage })
    }
    const base = { id: 'cmpl-s', object: 'text_completion', created, model }
    const events: { data: unknown }[] = fake.streamChunks.map((p) => ({ data: { ...base, choices: [{ text: p, index: 0, logprobs: null, finish_reason: null }] } }))
    if (body.stream_options?.include_usage) events.push({ data: { ...base, choices: [], usage } })
    return sse(fake, res, events)
  }
  if (path === '/v1/embeddings') {
    const inputs: unknown[] = Array.isArray(body.input) && typeof body.input[0] !== 'number' ? body.input : [body.input]
    const vector = [0.25, -0.5, 1]
    const data = inputs.map((_, index) => ({
      object: 'embedding', index,
      embedding: body.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
    }))
    return json(res, { object: 'list', data, model, usage: { prompt_tokens: 6, total_tokens: 6 } })
  }
  if (path === '/v1/responses') {
    const usage = { input_tokens: 9, input_tokens_details: { cached_tokens: 0 }, output_tokens: 3, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 12 }
    const text = body.text?.format?.type === 'json_schema' ? JSON.stringify({ answer: 'ok' }) : fake.reply
    const message = { id: 'msg_1', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [], logprobs: [] }] }
    const response = (status: string, output: unknown[], u: unknown) => ({
      id: 'resp_1', object: 'response', created_at: created, status, error: null, incomplete_details: null,
      instructions: body.instructions ?? null, max_output_tokens: null, model, output, parallel_tool_calls: true,
      previous_response_id: null, reasoning: { effort: null, summary: null }, store: true, temperature: 1,
      text: { format: { type: 'text' } }, tool_choice: 'auto', tools: [], top_p: 1, truncation: 'disabled', usage: u, user: null, metadata: {},
    })
    if (!body.stream) return json(res, response('completed', [message], usage))
    const pieces = text === fake.reply ? fake.streamChunks : [text]
    let seq = 0
    const ev = (type: string, rest: Record<string, unknown>) => ({ event: type, data: { type, sequence_number: seq++, ...rest } })
    const events = [
      ev('response.created', { response: response('in_progress', [], null) }),
      ev('response.in_progress', { response: response('in_progress', [], null) }),
      ev('response.output_item.added', { output_index: 0, item: { ...message, status: 'in_progress', content: [] } }),
      ev('response.content_part.added', { item_id: 'msg_1', output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } }),
      ...pieces.map((delta) => ev('response.output_text.delta', { item_id: 'msg_1', output_index: 0, content_index: 0, delta, logprobs: [] })),
      ev('response.output_text.done', { item_id: 'msg_1', output_index: 0, content_index: 0, text: pieces.join(''), logprobs: [] }),
      ev('response.content_part.done', { item_id: 'msg_1', output_index: 0, content_index: 0, part: { type: 'output_text', text: pieces.join(''), annotations: [], logprobs: [] } }),
      ev('response.output_item.done', { output_index: 0, item: { ...message, content: [{ type: 'output_text', text: pieces.join(''), annotations: [], logprobs: [] }] } }),
      ev('response.completed', { response: response('completed', [{ ...message, content: [{ type: 'output_text', text: pieces.join(''), annotations: [], logprobs: [] }] }], usage) }),
    ]
    res.writeHead(200, { 'content-type': 'text/event-stream', 'x-request-id': 'req_stream' })
    for (const e of events) {
      if (res.destroyed) return
      res.write(`event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`)
      if (fake.streamChunkDelayMs) await sleep(fake.streamChunkDelayMs)
    }
    res.end()
    return
  }
  res.writeHead(404, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error', param: null, code: null } }))
}
