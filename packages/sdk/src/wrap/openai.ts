import { performance } from 'node:perf_hooks'
import { LLMGuardError } from '../errors.js'
import { StreamAccumulator, type CallInfo, type Endpoint } from '../record/build.js'

/** Who an individual call is for; merged over the wrap's and the guard's defaults. */
export interface CallContext {
  userId?: string
  metadata?: Record<string, unknown>
}

/** Request-option key carrying a CallContext (stripped before the request goes out). */
export const CONTEXT_KEY = 'llmguard'

export type Outcome =
  | { kind: 'success'; value: unknown }
  /** `secret`: the client's API key, kept out of the recorded error (a proxy may echo it) */
  | { kind: 'error'; error: unknown; secret: string | undefined }
  | { kind: 'stream'; acc: StreamAccumulator; aborted: boolean; error?: unknown; secret?: string | undefined }
  /** the caller took the raw Response (`asResponse()`): the body is theirs, not ours */
  | { kind: 'raw'; status: number }

/** What the guard does around a call; the adapter only knows the openai client's shapes. */
export interface WrapHooks {
  /** May throw an LLMGuardError (a policy block); any other failure must already be swallowed. */
  prepare(endpoint: Endpoint, body: unknown, context: CallContext | undefined, defaults: CallContext | undefined): { body: unknown; call?: CallInfo }
  /** A returned promise delays the caller until it settles ('immediate' durability, serverless). */
  finish(call: CallInfo, outcome: Outcome, endMark: number): void | Promise<void>
  /** After a policy block: a returned promise delays the caller's rejection until it settles (serverless). */
  blocked?(): void | Promise<void>
  internalError(where: string, err: unknown): void
}

const WRAPPED = Symbol.for('llmguard.wrapped')

const TARGETS: { path: [string, ...string[]]; endpoint: Endpoint }[] = [
  { path: ['chat', 'completions'], endpoint: 'chat.completions' },
  { path: ['responses'], endpoint: 'responses' },
  { path: ['embeddings'], endpoint: 'embeddings' },
  { path: ['completions'], endpoint: 'completions' },
]

type Obj = Record<string | symbol, unknown>
type AnyFn = (this: unknown, ...args: unknown[]) => unknown

/**
 * Whether `client` is an openai client (v6, or Azure's, which extends it): it has
 * `chat.completions.create`. Not, for example, `openai.chat`, whose `completions` would be taken
 * for the legacy completions endpoint.
 */
export function isOpenAIClient(client: object): boolean {
  const chat = (client as Obj).chat as Obj | undefined
  const completions = chat && typeof chat === 'object' ? (chat.completions as Obj | undefined) : undefined
  return !!completions && typeof completions.create === 'function'
}

/**
 * Patches the four `create` methods on this client instance. Patching the instance (not a
 * Proxy) matters: the helpers (`chat.completions.stream/parse`, `responses.stream/parse`) call
 * `client.chat.completions.create` on the real client, so they are recorded too.
 */
export function wrapOpenAI<T extends object>(client: T, hooks: WrapHooks, defaults: CallContext | undefined): T {
  const state = (client as Obj)[WRAPPED] as { defaults: CallContext | undefined; hooks: WrapHooks } | undefined
  if (state) {
    // wrapped before (maybe by a guard since shut down): the latest guard and defaults win. A
    // derived client (withOptions) wrapped by its parent's guard keeps following the parent's, so
    // re-wrapping the parent with a new guard moves it along
    state.defaults = defaults
    const parent = Object.getPrototypeOf(state) as { hooks?: WrapHooks } | null
    if (parent && parent !== Object.prototype && parent.hooks === hooks) delete (state as { hooks?: WrapHooks }).hooks
    else state.hooks = hooks
    return client
  }
  patchClient(client, { defaults, hooks })
  return client
}

/**
 * Patches one client instance with the wrap's state. `withOptions()` (openai's way to derive a
 * client with another timeout, base URL or headers) builds a new instance: it is patched with
 * the same state, so its calls are recorded and the policy applies to them too.
 */
function patchClient(client: object, shared: { defaults: CallContext | undefined; hooks: WrapHooks }): void {
  Object.defineProperty(client, WRAPPED, { value: shared, enumerable: false })
  const secret = () => apiKeyOf(client)
  const withOptions = (client as Obj).withOptions
  if (typeof withOptions === 'function') {
    ;(client as Obj).withOptions = function wrappedWithOptions(this: unknown, ...args: unknown[]) {
      const derived = (withOptions as AnyFn).apply(this, args)
      // its own state, falling back to this client's: a later wrap() of the derived client (other
      // defaults, another guard) changes only it, and a re-wrap of this one reaches it too
      if (derived && typeof derived === 'object' && !(WRAPPED in derived)) patchClient(derived, Object.create(shared) as typeof shared)
      return derived
    }
  }
  for (const t of TARGETS) {
    let resource: unknown = client
    for (const key of t.path) resource = resource && (resource as Obj)[key]
    if (!resource || typeof (resource as Obj).create !== 'function') continue
    const original = (resource as Obj).create as AnyFn
    ;(resource as Obj).create = function wrappedCreate(this: unknown, body: unknown, options?: unknown) {
      return guardedCreate(this, original, t.endpoint, body, options, shared.hooks, shared.defaults, secret)
    }
  }
}

function guardedCreate(
  self: unknown,
  original: AnyFn,
  endpoint: Endpoint,
  body: unknown,
  options: unknown,
  hooks: WrapHooks,
  defaults: CallContext | undefined,
  secret: () => string | undefined,
): unknown {
  let context: CallContext | undefined
  let opts = options
  if (opts && typeof opts === 'object' && CONTEXT_KEY in opts) {
    const { [CONTEXT_KEY]: ctx, ...rest } = opts as Obj
    context = ctx as CallContext
    opts = rest
  }
  let prepared: { body: unknown; call?: CallInfo }
  try {
    prepared = hooks.prepare(endpoint, body, context, defaults)
  } catch (err) {
    if (err instanceof LLMGuardError) {
      let after: void | Promise<void> = undefined
      try {
        after = hooks.blocked?.()
      } catch (e) {
        hooks.internalError('blocked', e)
      }
      return rejectedApiPromise(err, after ?? undefined)
    }
    hooks.internalError('prepare', err)
    prepared = { body }
  }
  const p = opts === undefined ? original.call(self, prepared.body) : original.call(self, prepared.body, opts)
  if (prepared.call) {
    try {
      observe(p as Obj, prepared.call, hooks, secret)
    } catch (err) {
      hooks.internalError('observe', err)
    }
  }
  return p
}

/**
 * A policy block, shaped like an APIPromise: `await`, `.withResponse()`, `.asResponse()` and the
 * helpers' `._thenUnwrap()` all reject with the typed error.
 */
function rejectedApiPromise(err: LLMGuardError, after?: Promise<void>): Promise<never> {
  const rejected = (): Promise<never> => (after ? after.then(() => Promise.reject(err), () => Promise.reject(err)) : Promise.reject(err))
  const p = rejected() as Promise<never> & Obj
  // a caller that takes `.withResponse()`, `.asResponse()` or a helper's child never awaits this
  // promise itself: its rejection must not count as unhandled (Node would end the process)
  p.catch(() => undefined)
  p.withResponse = rejected
  p.asResponse = rejected
  p._thenUnwrap = () => rejectedApiPromise(err, after)
  return p
}

type ParseResponse = (client: unknown, props: unknown) => Promise<unknown>

/**
 * A call whose promise nobody has awaited (nor asked for its Response) this long after its
 * headers is recorded without its body: it may never be read. Until then a late `await` (the
 * app did other work first) still records the answer.
 */
const RAW_AFTER_MS = 60_000

/** Where an observed APIPromise keeps its Observation: the hooks below are shared, not per call. */
const OBSERVATION = Symbol('llmguard.observation')

/**
 * What the hooks on one APIPromise share. One object per call instead of a closure per hook:
 * this runs on every wrapped call, so what it allocates is paid on every call.
 */
class Observation {
  done = false
  /** Someone asked for the parsed body (await, parse(), withResponse(), a helper's child promise). */
  parseWanted = false
  /** Someone asked for the raw Response (`asResponse()`; `withResponse()` wants the body too). */
  rawWanted = false
  /** The HTTP status once headers arrived, and when. */
  status = 0
  headersAt = 0
  /** When the body's parse began: later than headersAt when the caller awaited late. */
  parseAt = 0
  rawTimer: NodeJS.Timeout | undefined

  constructor(
    readonly call: CallInfo,
    readonly hooks: WrapHooks,
    readonly parse: AnyFn,
    readonly thenUnwrap: AnyFn | undefined,
    readonly parseResponse: ParseResponse,
    readonly asResponse: AnyFn | undefined,
    readonly secret: () => string | undefined,
  ) {}

  finish(outcome: Outcome, endMark = performance.now()): void | Promise<void> {
    if (this.done) return
    this.done = true
    if (this.rawTimer) clearTimeout(this.rawTimer)
    try {
      return this.hooks.finish(this.call, outcome, endMark)
    } catch (err) {
      this.hooks.internalError('finish', err)
    }
  }

  /**
   * Headers arrived. A caller that asked for the raw Response reads the body itself: recorded
   * as raw once `await` had a turn (withResponse() asks for both). A caller that asked for
   * neither yet may still await the promise later (after other work): the body is recorded
   * when it does; only a promise nobody takes up within RAW_AFTER_MS is recorded as raw.
   */
  headers(status: number): void {
    if (this.parseWanted) return
    this.status = status
    this.headersAt = performance.now()
    if (this.rawWanted) return this.raw()
    this.rawTimer = setTimeout(() => {
      if (!this.parseWanted) void this.finish({ kind: 'raw', status }, this.headersAt)
    }, RAW_AFTER_MS)
    this.rawTimer.unref()
  }

  /** asResponse(): recorded as raw after a turn, unless the body is wanted too. */
  raw(): void {
    if (this.done || !this.headersAt) return
    setImmediate(() => {
      if (!this.parseWanted) void this.finish({ kind: 'raw', status: this.status }, this.headersAt)
    })
  }

  /**
   * When the call ended. openai reads the body only once the caller awaits: a caller that did
   * other work first (or awaits calls one after another) would have that wait counted in the
   * latency. The body's parse then began after the headers: the call ended the parse's own time
   * after the headers, not now.
   */
  endMark(): number {
    const now = performance.now()
    return this.headersAt && this.parseAt > this.headersAt ? this.headersAt + (now - this.parseAt) : now
  }

  /** The body is parsed: a stream is watched chunk by chunk, anything else is finished now. */
  parsed(value: unknown): unknown {
    if (this.done) return value
    if (this.call.stream && isStream(value)) {
      this.done = true
      watchStream(value, this.call, this.hooks, this.secret)
      return value
    }
    const w = this.finish({ kind: 'success', value }, this.endMark())
    return w ? w.then(() => value) : value
  }

  /** The request or the parse failed: recorded, then the caller gets the same error. */
  failed(error: unknown): Promise<never> {
    const w = this.finish({ kind: 'error', error, secret: this.secret() }, this.endMark())
    if (w) return w.then(() => Promise.reject(error))
    return Promise.reject(error)
  }
}

function observationOf(p: unknown): Observation {
  return (p as Obj)[OBSERVATION] as Observation
}

// The hooks take their state from the APIPromise they are installed on (`this`): openai calls
// `this.parse()`, `this._thenUnwrap()` and `this.parseResponse()` on it, and `_thenUnwrap`
// children call their parent's `parseResponse` with the parent as `this`.
function parseHook(this: unknown): unknown {
  const o = observationOf(this)
  o.parseWanted = true
  return o.parse.call(this)
}

function asResponseHook(this: unknown): unknown {
  const o = observationOf(this)
  o.rawWanted = true
  o.raw()
  return o.asResponse!.call(this)
}

function thenUnwrapHook(this: unknown, ...args: unknown[]): unknown {
  const o = observationOf(this)
  o.parseWanted = true
  return o.thenUnwrap!.apply(this, args)
}

function parseResponseHook(this: unknown, client: unknown, props: unknown): Promise<unknown> {
  const o = observationOf(this)
  o.parseWanted = true
  if (!o.parseAt) o.parseAt = performance.now()
  return o.parseResponse.call(this, client, props).then(
    (value) => o.parsed(value),
    (error: unknown) => o.failed(error),
  )
}

/**
 * Watches an APIPromise without changing what it gives the caller. Three instance properties
 * are its choke points: `responsePromise` (headers or a transport error), `parseResponse`
 * (the body, also reached by `_thenUnwrap` children such as `.parse()`), and `parse` (to know
 * whether anyone wants the body at all).
 */
function observe(p: Obj, call: CallInfo, hooks: WrapHooks, secret: () => string | undefined): void {
  const responsePromise = p.responsePromise as Promise<{ response: { status: number } }> | undefined
  const parseResponse = p.parseResponse as ParseResponse | undefined
  const parse = p.parse as AnyFn | undefined
  if (!responsePromise || typeof responsePromise.then !== 'function' || typeof parseResponse !== 'function' || typeof parse !== 'function') return
  const thenUnwrap = typeof p._thenUnwrap === 'function' ? (p._thenUnwrap as AnyFn) : undefined
  const asResponse = typeof p.asResponse === 'function' ? (p.asResponse as AnyFn) : undefined
  const o = new Observation(call, hooks, parse, thenUnwrap, parseResponse, asResponse, secret)
  p[OBSERVATION] = o
  p.parse = parseHook
  if (asResponse) p.asResponse = asResponseHook
  if (thenUnwrap) p._thenUnwrap = thenUnwrapHook
  p.parseResponse = parseResponseHook
  p.responsePromise = responsePromise.then(
    (props) => {
      o.headers(props.response.status)
      return props
    },
    (error: unknown) => o.failed(error),
  )
}

/** The client's API key as it stands now (openai refreshes a key given as a function). */
function apiKeyOf(client: object): string | undefined {
  const key = (client as Obj).apiKey
  return typeof key === 'string' && key ? key : undefined
}

function isStream(v: unknown): v is Obj & { iterator: () => AsyncIterator<unknown>; controller: AbortController } {
  return typeof v === 'object' && v !== null && typeof (v as Obj).iterator === 'function' && (v as Obj).controller instanceof AbortController
}

/**
 * Replaces the Stream's iterator factory, which iteration, `tee()` and `toReadableStream()` all
 * go through, with one that sees each chunk on its way to the caller.
 */
function watchStream(
  stream: Obj & { iterator: () => AsyncIterator<unknown>; controller: AbortController },
  call: CallInfo,
  hooks: WrapHooks,
  secret: () => string | undefined,
): void {
  const make = stream.iterator
  let watched = false
  stream.iterator = function (this: unknown) {
    // a second pass fails in openai ("consumed stream"): the call is recorded once, by the first
    if (watched) return make.call(this)
    watched = true
    return observeIterator(make.call(this), stream.controller, call, hooks, secret)
  }
}

async function* observeIterator(
  it: AsyncIterator<unknown>,
  controller: AbortController,
  call: CallInfo,
  hooks: WrapHooks,
  secret: () => string | undefined,
): AsyncGenerator<unknown> {
  const acc = new StreamAccumulator(call.endpoint, call.startMark)
  let finished = false
  let error: unknown
  let failed = false
  try {
    for (;;) {
      const r = await it.next()
      if (r.done) {
        finished = true
        break
      }
      try {
        acc.push(r.value, performance.now())
      } catch (err) {
        hooks.internalError('stream chunk', err)
      }
      yield r.value
    }
  } catch (err) {
    failed = true
    error = err
    throw err
  } finally {
    // the caller broke out early: let the real iterator abort the request as it would have
    if (!finished && !failed) await it.return?.()
    // stopped by the caller: a break (not finished), or controller.abort(), which openai's
    // Stream ends quietly. A stream that failed was not aborted by the caller, though openai
    // aborts its controller after any error
    const aborted = !failed && (!finished || controller.signal.aborted)
    let w: void | Promise<void> = undefined
    try {
      w = hooks.finish(call, { kind: 'stream', acc, aborted, error: failed ? error : undefined, secret: secret() }, performance.now())
    } catch (err) {
      hooks.internalError('finish', err)
    }
    if (w) await w
  }
}
