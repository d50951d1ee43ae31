import { describe, expect, it } from 'vitest'
import { llmRecordSchema, MAX_METADATA_BYTES } from '@llmguard/shared'
import { errorInfo, errorRecord, newCall, stamp, StreamAccumulator, streamRecord, successRecord } from '../src/record/build.js'
import { isoTimestamp } from '../src/record/text.js'

const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }
const completion = {
  choices: [{ index: 0, message: { role: 'assistant', content: 'hello' } }],
  usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12, prompt_tokens_details: { cached_tokens: 2 } },
}

// What reaches the outbox is the JSON of the stamped record (the writer stamps each record just
// before serialising it): fields a call does not have must be absent, not null
const json = (r: Parameters<typeof stamp>[0]) => JSON.parse(JSON.stringify(stamp(r))) as Record<string, unknown>

describe('record building', () => {
  it('serialises a success with exactly the fields the call has, in a stable order', () => {
    const call = newCall('chat.completions', body, { startMark: 100 })
    const r = successRecord(call, completion, 142.4)
    expect(Object.keys(json(r))).toEqual(['id', 'prompt', 'model', 'latency', 'timestamp', 'endpoint', 'stream', 'response', 'promptTokens', 'completionTokens', 'tokens', 'cachedTokens', 'status'])
    expect(json(r)).toMatchObject({ prompt: 'user: hi', model: 'gpt-4o-mini', latency: 42, endpoint: 'chat.completions', stream: false, response: 'hello', promptTokens: 9, completionTokens: 3, tokens: 12, cachedTokens: 2, status: 'success' })
  })

  it('stamps the id and the start time when the record is serialised, once', () => {
    const before = Date.now()
    const call = newCall('chat.completions', body, { startMark: 0 })
    const r = successRecord(call, completion, 1)
    expect(JSON.parse(JSON.stringify(r))).not.toHaveProperty('id')
    expect(JSON.parse(JSON.stringify(r))).not.toHaveProperty('timestamp')
    const first = json(r)
    expect(first.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(first.timestamp).toBe(new Date(call.startedAt).toISOString())
    expect(call.startedAt).toBeGreaterThanOrEqual(before)
    // a record stamped again (written after a busy outbox, say) keeps its id
    expect(json(r)).toEqual(first)
    // a record that came with its own keeps them
    expect(stamp({ id: 'x', timestamp: 't', prompt: 'p', model: 'm', latency: 1 })).toMatchObject({ id: 'x', timestamp: 't' })
  })

  it('formats timestamps exactly as Date#toISOString', () => {
    const day = 86_400_000
    const samples = [0, 1, 999, 1000, day - 1, day, 951_782_400_000 - 1, 951_782_400_000, 4_107_542_399_999, 253_402_300_799_999, Date.now()]
    for (let i = 0; i < 2000; i++) samples.push(Math.floor(Math.random() * 253_402_300_800_000))
    for (const ms of samples) expect(isoTimestamp(ms)).toBe(new Date(ms).toISOString())
    // outside the fast path: Date's own formatting
    expect(isoTimestamp(-1)).toBe(new Date(-1).toISOString())
    expect(isoTimestamp(253_402_300_800_000)).toBe(new Date(253_402_300_800_000).toISOString())
    expect(isoTimestamp(1.5)).toBe(new Date(1.5).toISOString())
  })

  it('keeps user, metadata and the switched model when present', () => {
    const call = newCall('chat.completions', body, { startMark: 0, userId: 'u1', metadata: { team: 'a' }, requestedModel: 'gpt-4o' })
    expect(json(successRecord(call, completion, 1))).toMatchObject({ userId: 'u1', metadata: { team: 'a' }, requestedModel: 'gpt-4o' })
  })

  it('cuts a model, switched model or user id past the contract\'s bounds: the record stays valid', () => {
    const call = newCall('chat.completions', { ...body, model: 'm'.repeat(199) + '🚀' }, { startMark: 0, userId: 'u'.repeat(300), requestedModel: 'r'.repeat(201) })
    const r = json(successRecord(call, completion, 1))
    expect(r).toMatchObject({ model: 'm'.repeat(199), userId: 'u'.repeat(256), requestedModel: 'r'.repeat(200) })
    expect(llmRecordSchema.safeParse(r).success).toBe(true)
  })

  it('keeps an aborted stream valid when its flag takes metadata just under 16 KB over the limit', () => {
    // JSON of exactly the limit: within it alone, over it with llmguardAborted added
    const metadata = { pad: 'x'.repeat(MAX_METADATA_BYTES - '{"pad":""}'.length) }
    expect(JSON.stringify(metadata)).toHaveLength(MAX_METADATA_BYTES)
    const call = newCall('chat.completions', { ...body, stream: true }, { startMark: 0, metadata })
    const acc = new StreamAccumulator('chat.completions', 0)
    acc.push({ choices: [{ index: 0, delta: { content: 'he' } }] }, 1)
    const r = json(streamRecord(call, acc.summary(true), 2))
    expect(r.metadata).toEqual({ llmguardNote: 'metadata over 16 KB was dropped', llmguardAborted: true })
    expect(llmRecordSchema.safeParse(r).success).toBe(true)
    // room to spare: the app's metadata stays, with the flag
    const small = json(streamRecord(newCall('chat.completions', { ...body, stream: true }, { startMark: 0, metadata: { team: 'a' } }), acc.summary(true), 2))
    expect(small.metadata).toEqual({ team: 'a', llmguardAborted: true })
  })

  it('cuts a long error message and type without splitting a surrogate pair', () => {
    const err = Object.assign(new Error('x'.repeat(9_999) + '🚀 and more'), { type: 't'.repeat(199) + '🚀' })
    const info = errorInfo(err)
    expect(info.message).toBe('x'.repeat(9_999))
    expect(info.type).toBe('t'.repeat(199))
    expect(errorInfo('y'.repeat(9_999) + '🚀').message).toBe('y'.repeat(9_999))
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
