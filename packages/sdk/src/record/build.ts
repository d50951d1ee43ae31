import { randomUUID } from 'node:crypto'
import { cutText, type LlmRecordInput } from '@llmguard/shared'
import {
  chatResponseText,
  flattenContent,
  flattenInput,
  flattenMessages,
  flattenResponsesInput,
  responsesOutputText,
  toolCallsText,
} from './flatten.js'
import { boundMetadata, isoTimestamp, truncateUtf8, withFlag } from './text.js'

export type Endpoint = 'chat.completions' | 'responses' | 'embeddings' | 'completions'

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null

/** What the SDK knows about one call when it starts. */
export interface CallInfo {
  endpoint: Endpoint
  /** The request as sent (after the policy). */
  body: Obj
  model: string
  /** The model the app asked for, when the policy switched it. */
  requestedModel?: string | undefined
  stream: boolean
  userId?: string | undefined
  metadata?: Record<string, unknown> | undefined
  /** Epoch ms, for the record's timestamp. */
  startedAt: number
  /** performance.now() at the start, for latency. */
  startMark: number
}

/** Who a call is for and what the policy changed, as `prepare` found them. */
export interface CallExtra {
  startMark: number
  userId?: string | undefined
  metadata?: Record<string, unknown> | undefined
  requestedModel?: string | undefined
}

/** The contract's bounds on a record's names (packages/shared ingest.ts): longer, the collector refuses the record. */
const MAX_MODEL_CHARS = 200
const MAX_USER_ID_CHARS = 256

export function newCall(endpoint: Endpoint, body: Obj, extra: CallExtra): CallInfo {
  // one literal with every field, always in the same order: every CallInfo shares one shape.
  // Names come from the app's request (a user's id in `user`, say): cut to the contract's
  // bounds, so a long one never costs the whole record
  return {
    endpoint,
    body,
    model: typeof body.model === 'string' && body.model ? cutText(body.model, MAX_MODEL_CHARS) : 'unknown',
    requestedModel: extra.requestedModel === undefined ? undefined : cutText(extra.requestedModel, MAX_MODEL_CHARS),
    stream: body.stream === true,
    userId: extra.userId === undefined ? undefined : cutText(extra.userId, MAX_USER_ID_CHARS),
    metadata: extra.metadata,
    startedAt: Date.now(),
    startMark: extra.startMark,
  }
}

/** The flattened prompt of a request. */
export function promptOf(endpoint: string, body: Obj): string {
  switch (endpoint) {
    case 'chat.completions':
      return flattenMessages(body.messages)
    case 'responses':
      return flattenResponsesInput(body.input, body.instructions)
    case 'embeddings':
      return flattenInput(body.input)
    case 'completions':
      return flattenInput(body.prompt)
    default:
      return ''
  }
}

export interface Usage {
  promptTokens?: number
  completionTokens?: number
  tokens?: number
  cachedTokens?: number
  reasoningTokens?: number
}

const count = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined

/** Token counts from either usage shape (chat/completions/embeddings, or responses). */
export function usageOf(usage: unknown): Usage {
  if (!isObj(usage)) return {}
  const u: Usage = {}
  const prompt = count(usage.prompt_tokens) ?? count(usage.input_tokens)
  const completion = count(usage.completion_tokens) ?? count(usage.output_tokens)
  if (prompt !== undefined) u.promptTokens = prompt
  if (completion !== undefined) u.completionTokens = completion
  const total = count(usage.total_tokens)
  if (total !== undefined) u.tokens = total
  const pd = usage.prompt_tokens_details ?? usage.input_tokens_details
  const cd = usage.completion_tokens_details ?? usage.output_tokens_details
  const cached = isObj(pd) ? count(pd.cached_tokens) : undefined
  const reasoning = isObj(cd) ? count(cd.reasoning_tokens) : undefined
  // keep the contract's invariants: a part never exceeds its whole
  if (cached !== undefined && cached <= (prompt ?? 0)) u.cachedTokens = cached
  if (reasoning !== undefined && reasoning <= (completion ?? 0)) u.reasoningTokens = reasoning
  return u
}

/**
 * Where a built record keeps its start time until `stamp` turns it into the timestamp. A symbol
 * key: JSON.stringify leaves it out.
 */
const STARTED_AT = Symbol('llmguard.startedAt')

type BuiltRecord = LlmRecordInput & { [STARTED_AT]?: number }

/**
 * Gives a record its id and timestamp if it has none yet: the writer calls it for each record
 * just before serialising it. Done there, for a tick's records in one loop, rather than on the
 * caller's path: measured in the call path (caches cold from the openai client's work) the
 * UUID cost ~3 µs and the ISO date ~6 µs a call, a fraction of that in the writer's loop.
 */
export function stamp(r: LlmRecordInput): LlmRecordInput {
  if (r.id === undefined) r.id = randomUUID()
  if (r.timestamp === undefined) r.timestamp = isoTimestamp((r as BuiltRecord)[STARTED_AT] ?? Date.now())
  return r
}

function base(call: CallInfo, endMark: number, prompt: string): LlmRecordInput {
  // Every field in one literal, always in this order, absent ones undefined (JSON.stringify
  // leaves them out, so the JSON is as before): all records share one hidden class, which keeps
  // building and serialising them, once per call, on V8's fast paths. `id` and `timestamp` are
  // filled in by `stamp` when the writer serialises the record.
  const r: BuiltRecord = {
    id: undefined,
    prompt: truncateUtf8(prompt),
    model: call.model,
    latency: Math.max(0, Math.round(endMark - call.startMark)),
    timestamp: undefined,
    endpoint: call.endpoint,
    stream: call.stream,
    requestedModel: call.requestedModel || undefined,
    userId: call.userId || undefined,
    metadata: boundMetadata(call.metadata),
    response: undefined,
    promptTokens: undefined,
    completionTokens: undefined,
    tokens: undefined,
    cachedTokens: undefined,
    reasoningTokens: undefined,
    timeToFirstToken: undefined,
    status: undefined,
    error: undefined,
    [STARTED_AT]: call.startedAt,
  }
  return r
}

/** Field by field rather than Object.assign, so the record keeps its shape. */
function applyUsage(r: LlmRecordInput, u: Usage): void {
  r.promptTokens = u.promptTokens
  r.completionTokens = u.completionTokens
  r.tokens = u.tokens
  r.cachedTokens = u.cachedTokens
  r.reasoningTokens = u.reasoningTokens
}

/** The answer's text and usage of a finished non-streaming call. */
export function responseOf(endpoint: string, result: unknown): { text: string; usage: Usage } {
  if (!isObj(result)) return { text: typeof result === 'string' ? result : '', usage: {} }
  const usage = usageOf(result.usage)
  switch (endpoint) {
    case 'chat.completions':
      return { text: chatResponseText(result.choices), usage }
    case 'responses':
      return { text: responsesOutputText(result), usage }
    case 'completions': {
      const choices = Array.isArray(result.choices) ? result.choices : []
      return { text: choices.map((c) => (isObj(c) && typeof c.text === 'string' ? c.text : '')).join('\n'), usage }
    }
    default:
      // embeddings: the vectors are not text worth storing
      return { text: '', usage }
  }
}

export function successRecord(call: CallInfo, result: unknown, endMark: number): LlmRecordInput {
  const { text, usage } = responseOf(call.endpoint, result)
  const r = base(call, endMark, promptOf(call.endpoint, call.body))
  r.response = truncateUtf8(text)
  applyUsage(r, usage)
  r.status = 'success'
  return r
}

/** Keys this short are not worth hiding (and would cut up ordinary words). */
const MIN_SECRET_CHARS = 8

/** `text` with every occurrence of `secret` replaced. */
function redact(text: string, secret: string | undefined): string {
  return secret && secret.length >= MIN_SECRET_CHARS && text.includes(secret) ? text.split(secret).join('[redacted]') : text
}

/**
 * What the record keeps of a failure: never headers or the request, so no key can leak that way;
 * and the client's own key (`secret`) is taken out of the type and message, which are the
 * server's words: a proxy in front of the API may echo the key it was given.
 */
export function errorInfo(err: unknown, secret?: string): { type: string; message: string; status?: number } {
  if (!isObj(err)) return { type: 'Error', message: cutText(redact(String(err), secret), 10_000) }
  const status = typeof err.status === 'number' && err.status >= 100 && err.status <= 599 ? err.status : undefined
  const inner = isObj(err.error) ? err.error : undefined
  const type =
    (typeof err.type === 'string' && err.type) ||
    (inner && typeof inner.type === 'string' && inner.type) ||
    (typeof err.code === 'string' && err.code) ||
    (typeof err.name === 'string' && err.name !== 'Error' && err.name) ||
    (typeof err.constructor === 'function' && err.constructor.name) ||
    'Error'
  const message = typeof err.message === 'string' ? err.message : String(err)
  const info: { type: string; message: string; status?: number } = { type: cutText(redact(type, secret), 200), message: cutText(redact(message, secret), 10_000) }
  if (status !== undefined) info.status = status
  return info
}

export function errorRecord(call: CallInfo, err: unknown, endMark: number, partial?: StreamSummary, secret?: string): LlmRecordInput {
  const r = base(call, endMark, promptOf(call.endpoint, call.body))
  if (partial) applyStream(r, partial)
  r.status = 'error'
  r.error = errorInfo(err, secret)
  return r
}

export interface StreamSummary {
  text: string
  usage: Usage
  timeToFirstToken?: number
  aborted: boolean
  /** A failure the stream reported as an event (responses: `error`, `response.failed`) rather than threw. */
  failure?: { type: string; message: string }
}

function applyStream(r: LlmRecordInput, s: StreamSummary): void {
  r.response = truncateUtf8(s.text)
  applyUsage(r, s.usage)
  if (s.timeToFirstToken !== undefined) r.timeToFirstToken = Math.max(0, Math.round(s.timeToFirstToken))
  if (s.aborted) r.metadata = withFlag(r.metadata, 'llmguardAborted', true)
}

export function streamRecord(call: CallInfo, s: StreamSummary, endMark: number): LlmRecordInput {
  const r = base(call, endMark, promptOf(call.endpoint, call.body))
  applyStream(r, s)
  r.status = 'success'
  return r
}

/**
 * Collects a stream's text and usage chunk by chunk. Pure: the wrapper feeds it what the
 * caller's iteration yields, so it sees exactly what the caller saw.
 */
export class StreamAccumulator {
  private parts: string[] = []
  private choiceParts: Map<number, string[]> | undefined
  /** Chat tool calls by choice, then by the call's index: name and arguments as they stream. */
  private tools: Map<number, Map<number, { name: string; args: string; custom: boolean }>> | undefined
  /** Responses: the final response's text, which also holds its tool calls and refusals. */
  private finalText: string | undefined
  private failure: { type: string; message: string } | undefined
  private usage: Usage = {}
  private firstMark: number | undefined

  constructor(
    private readonly endpoint: string,
    private readonly startMark: number,
  ) {}

  push(chunk: unknown, mark: number): void {
    if (!isObj(chunk)) return
    if (this.endpoint === 'responses') return this.pushResponseEvent(chunk, mark)
    if (chunk.usage) this.usage = usageOf(chunk.usage)
    const choices = chunk.choices
    if (!Array.isArray(choices)) return
    for (const c of choices) {
      if (!isObj(c)) continue
      let text: string | undefined
      if (this.endpoint === 'completions') text = typeof c.text === 'string' ? c.text : undefined
      else if (isObj(c.delta)) {
        const d = c.delta
        text = typeof d.content === 'string' ? d.content : typeof d.refusal === 'string' ? d.refusal : undefined
        if (Array.isArray(d.tool_calls)) this.pushToolCalls(typeof c.index === 'number' ? c.index : 0, d.tool_calls, mark)
      }
      if (!text) continue
      if (this.firstMark === undefined) this.firstMark = mark
      const index = typeof c.index === 'number' ? c.index : 0
      if (index === 0) this.parts.push(text)
      else {
        this.choiceParts ??= new Map()
        const list = this.choiceParts.get(index) ?? []
        list.push(text)
        this.choiceParts.set(index, list)
      }
    }
  }

  /** Chat tool-call deltas: the first names the call (by its index), later ones add arguments. */
  private pushToolCalls(choice: number, deltas: unknown[], mark: number): void {
    for (const t of deltas) {
      if (!isObj(t)) continue
      const fn = isObj(t.function) ? t.function : isObj(t.custom) ? t.custom : undefined
      if (!fn) continue
      if (this.firstMark === undefined) this.firstMark = mark
      this.tools ??= new Map()
      const calls = this.tools.get(choice) ?? new Map<number, { name: string; args: string; custom: boolean }>()
      this.tools.set(choice, calls)
      const index = typeof t.index === 'number' ? t.index : calls.size
      const call = calls.get(index) ?? { name: '', args: '', custom: isObj(t.custom) }
      calls.set(index, call)
      if (typeof fn.name === 'string') call.name += fn.name
      const args = typeof fn.arguments === 'string' ? fn.arguments : typeof fn.input === 'string' ? fn.input : ''
      call.args += args
    }
  }

  private pushResponseEvent(ev: Obj, mark: number): void {
    const type = ev.type
    if ((type === 'response.output_text.delta' || type === 'response.refusal.delta') && typeof ev.delta === 'string') {
      if (this.firstMark === undefined) this.firstMark = mark
      this.parts.push(ev.delta)
    } else if (type === 'response.function_call_arguments.delta' || type === 'response.custom_tool_call_input.delta') {
      if (this.firstMark === undefined) this.firstMark = mark
    } else if ((type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed') && isObj(ev.response)) {
      this.usage = usageOf(ev.response.usage)
      const text = responsesOutputText(ev.response)
      if (text) this.finalText = text
      if (type === 'response.failed') {
        const e = isObj(ev.response.error) ? ev.response.error : {}
        this.failure = { type: typeof e.code === 'string' ? e.code : 'response.failed', message: typeof e.message === 'string' ? e.message : 'the response failed' }
      }
    } else if (type === 'error') {
      // openai's Stream hands an error event to the caller instead of throwing
      this.failure = { type: typeof ev.code === 'string' && ev.code ? ev.code : 'error', message: typeof ev.message === 'string' ? ev.message : 'stream error' }
    }
  }

  summary(aborted: boolean): StreamSummary {
    let text = this.finalText ?? this.choiceText(0, this.parts)
    if (this.choiceParts || this.tools) {
      // every choice up to the last, an empty one too: a line each, as the non-streamed answer
      const last = Math.max(0, ...(this.choiceParts?.keys() ?? []), ...(this.tools?.keys() ?? []))
      for (let k = 1; k <= last; k++) text += `\n${this.choiceText(k, this.choiceParts?.get(k) ?? [])}`
    }
    const s: StreamSummary = { text, usage: this.usage, aborted }
    if (this.firstMark !== undefined) s.timeToFirstToken = this.firstMark - this.startMark
    if (this.failure) s.failure = this.failure
    return s
  }

  /** A choice's text and then its tool calls, as a non-streamed answer records them. */
  private choiceText(choice: number, parts: string[]): string {
    const text = parts.join('')
    const calls = this.tools?.get(choice)
    if (!calls) return text
    const tools = toolCallsText(
      [...calls.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => (c.custom ? { custom: { name: c.name, input: c.args } } : { function: { name: c.name, arguments: c.args } })),
    )
    return text && tools ? `${text}\n${tools}` : text || tools
  }
}
