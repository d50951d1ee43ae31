import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export type FakeMode = 'valid' | 'invalid_json' | 'wrong_shape' | 'error_500' | 'error_unstorable' | 'error_echo_key' | 'hang'

export interface FakeOpenAI {
  /** The base URL to give the openai client (ends in /v1). */
  url: string
  mode: FakeMode
  /** The JSON the model "answers" in valid mode. */
  answer: Record<string, unknown>
  /** Valid mode: answer this long after the request (the answer as it was when the request came). */
  delayMs: number
  /** Every chat completion request body received. */
  requests: { model: string; messages: { role: string; content: string }[]; authorization?: string }[]
  close(): Promise<void>
}

export const VALID_ANSWER = {
  severity: 'high',
  rootCause: 'gpt-4o latency rose from 800 ms to 7,200 ms at 10:00 UTC after the provider degraded',
  recommendedFix: 'Switch latency-sensitive calls to gpt-4o-mini and set a 10 s client timeout',
  affectedRequests: 12,
  metadata: { confidence: 0.8 },
}

function completion(model: string, content: string) {
  return {
    id: `chatcmpl-${Math.random().toString(36).slice(2)}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 420, completion_tokens: 80, total_tokens: 500 },
    system_fingerprint: 'fp_fake',
  }
}

/**
 * A loopback stand-in for the OpenAI API (POST /v1/chat/completions, the real response shape),
 * used through the real `openai` client. Modes: a valid IncidentRCA answer, content that is not
 * JSON, JSON of the wrong shape, a 500 error envelope, or a request that never gets an answer.
 */
export async function startFakeOpenAI(mode: FakeMode = 'valid'): Promise<FakeOpenAI> {
  const sockets = new Set<Socket>()
  const fake: FakeOpenAI = { url: '', mode, answer: VALID_ANSWER, delayMs: 0, requests: [], close: async () => undefined }
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }))
      return
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    fake.requests.push({ ...body, authorization: req.headers.authorization })
    const json = (status: number, payload: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload))
    switch (fake.mode) {
      case 'valid': {
        const answer = fake.answer
        if (fake.delayMs) await new Promise((r) => setTimeout(r, fake.delayMs))
        return json(200, completion(body.model, '```json\n' + JSON.stringify(answer) + '\n```'))
      }
      case 'invalid_json':
        return json(200, completion(body.model, 'The root cause is probably the provider. {not json'))
      case 'wrong_shape':
        return json(200, completion(body.model, JSON.stringify({ severity: 'catastrophic', rootCause: '' })))
      case 'error_500':
        return json(500, { error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } })
      case 'error_unstorable':
        // a proxy echoing bytes back: a NUL and half of a surrogate pair in the message
        return json(502, { error: { message: 'upstream said a\u0000b and \ud83d', type: 'server_error', param: null, code: null } })
      case 'error_echo_key':
        // a proxy in front of OpenAI that echoes the key it was given (OpenAI itself masks it)
        return json(401, { error: { message: `invalid key ${String(req.headers.authorization).replace(/^Bearer /, '')}`, type: 'invalid_request_error', param: null, code: null } })
      case 'hang':
        return // never answers; the client's timeout or abort ends it
    }
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
  fake.close = async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return fake
}
