import { describe, expect, it } from 'vitest'
import { errorRecord, newCall, StreamAccumulator, streamRecord, successRecord } from '../src/record/build.js'

const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }
const completion = {
  choices: [{ index: 0, message: { role: 'assistant', content: 'hello' } }],
  usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12, prompt_tokens_details: { cached_tokens: 2 } },
}

// What reaches the outbox is the JSON: fields a call does not have must be absent, not null
const json = (r: unknown) => JSON.parse(JSON.stringify(r)) as Record<string, unknown>

describe('record building', () => {
  it('serialises a success with exactly the fields the call has, in a stable order', () => {
    const call = newCall('chat.completions', body, { startMark: 100 })
    const r = successRecord(call, completion, 142.4)
    expect(Object.keys(json(r))).toEqual(['id', 'prompt', 'model', 'latency', 'timestamp', 'endpoint', 'stream', 'response', 'promptTokens', 'completionTokens', 'tokens', 'cachedTokens', 'status'])
    expect(json(r)).toMatchObject({ prompt: 'user: hi', model: 'gpt-4o-mini', latency: 42, endpoint: 'chat.completions', stream: false, response: 'hello', promptTokens: 9, completionTokens: 3, tokens: 12, cachedTokens: 2, status: 'success' })
  })

  it('keeps user, metadata and the switched model when present', () => {
    const call = newCall('chat.completions', body, { startMark: 0, userId: 'u1', metadata: { team: 'a' }, requestedModel: 'gpt-4o' })
    expect(json(successRecord(call, completion, 1))).toMatchObject({ userId: 'u1', metadata: { team: 'a' }, requestedModel: 'gpt-4o' })
  })

  it('serialises an error without response or usage, and a stream with its time to first token', () => {
    const call = newCall('chat.completions', { ...body, stream: true }, { startMark: 0 })
    const e = json(errorRecord(call, Object.assign(new Error('boom'), { status: 500 }), 5))
    expect(Object.keys(e)).toEqual(['id', 'prompt', 'model', 'latency', 'timestamp', 'endpoint', 'stream', 'status', 'error'])
    expect(e.error).toEqual({ type: 'Error', message: 'boom', status: 500 })
    const acc = new StreamAccumulator('chat.completions', 0)
    acc.push({ choices: [{ index: 0, delta: { content: 'he' } }] }, 7)
    acc.push({ choices: [{ index: 0, delta: { content: 'llo' } }] }, 8)
    const s = json(streamRecord(call, acc.summary(true), 9))
    expect(Object.keys(s)).toEqual(['id', 'prompt', 'model', 'latency', 'timestamp', 'endpoint', 'stream', 'metadata', 'response', 'timeToFirstToken', 'status'])
    expect(s).toMatchObject({ response: 'hello', timeToFirstToken: 7, metadata: { llmguardAborted: true }, status: 'success', stream: true })
  })
})
