import { createRequire } from 'node:module'
import type { Socket } from 'node:net'
import type { Agent as UndiciAgent, Dispatcher } from 'undici'

/*
 * undici's Agent, loaded without undici's entry point, and one request on it.
 *
 * The entry point (`import … from 'undici'`) installs an Agent of its own as the process-wide
 * dispatcher of the global `fetch` when none is set yet. Imported by the SDK at an app's start,
 * it moved the app's own fetch calls (the openai client's) from Node's built-in undici onto
 * this copy, the one the SDK ships batches with, so the app's requests and the shipper's ran
 * through the same functions: V8 re-optimised them for both call sites, and the app's calls
 * paid for it. Measured with `pnpm bench:sdk`'s worker: a bare client with a batch POSTed every
 * second through the same undici as its fetch cost +46 ± 17 µs CPU per call; through a private
 * one +3 ± 14, through node:http +2 ± 13 (20 interleaved rounds; docs/benchmarks.md has these
 * and a noisier rerun, in which the shared undici again cost the most).
 *
 * lib/dispatcher/agent.js is part of undici's published package and the version is pinned; if
 * a later version moves it, the entry point is the fallback, with its old side effect.
 */

export interface UndiciParts {
  Agent: typeof UndiciAgent
  /** Whether the Agent came without the entry point's side effect. */
  private: boolean
}

/** Loads the Agent; `load` is node's require (a parameter so the fallback can be tested). */
export function loadUndici(load: (id: string) => unknown): UndiciParts {
  try {
    const Agent = load('undici/lib/dispatcher/agent.js') as typeof UndiciAgent
    if (typeof Agent === 'function') return { Agent, private: true }
  } catch {
    // moved in a later undici: the entry point below
  }
  return { Agent: (load('undici') as { Agent: typeof UndiciAgent }).Agent, private: false }
}

let parts: UndiciParts | undefined

function undici(): UndiciParts {
  parts ??= loadUndici(createRequire(import.meta.url))
  return parts
}

/** A new undici Agent (connection pools with keep-alive). */
export function createAgent(options?: UndiciAgent.Options, o: { unrefSockets?: boolean } = {}): UndiciAgent {
  const { Agent } = undici()
  if (!o.unrefSockets) return new Agent(options)
  return new Agent({ ...options, connect: unrefConnector(options?.connect) as unknown as UndiciAgent.Options['connect'] })
}

type Connector = (options: unknown, callback: (err: Error | null, socket: Socket | null) => void) => void

/**
 * undici's connector, making sockets that never hold the process open: undici unrefs a socket
 * while it is idle and refs it while a request is in flight; these stay unref'd throughout. A
 * background request then never keeps an app alive past its own work (a hanging server would
 * for the whole request timeout); whoever waits for one (a flush) holds the process open by a
 * timer of its own, as long as it is willing to wait.
 */
function unrefConnector(connect: UndiciAgent.Options['connect']): Connector {
  const load = createRequire(import.meta.url)
  let build: (o: object) => Connector
  try {
    build = load('undici/lib/core/connect.js') as typeof build
  } catch {
    build = (load('undici') as { buildConnector: typeof build }).buildConnector
  }
  const inner = typeof connect === 'function' ? (connect as unknown as Connector) : build(connect ?? {})
  return (options, callback) =>
    inner(options, (err, socket) => {
      if (socket) {
        socket.unref()
        socket.ref = () => socket
      }
      callback(err, socket)
    })
}

export interface UndiciSendOptions {
  method: Dispatcher.HttpMethod
  headers: Record<string, string>
  body?: string | Buffer
  /** The whole exchange, connection to last byte: past it the request is aborted. */
  timeoutMs: number
  /** Response bodies past this many bytes abort the request (the collector's answers are small). */
  maxResponseBytes?: number
}

export interface UndiciReply {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  text: string
}

/** The error an exchange fails with when it outlives `timeoutMs`. */
export class UndiciTimeoutError extends Error {
  readonly code = 'REQUEST_TIMEOUT'
  constructor(timeoutMs: number) {
    super(`no complete answer within ${timeoutMs} ms`)
    this.name = 'UndiciTimeoutError'
  }
}

/** The error an exchange fails with when the answer is larger than `maxResponseBytes`. */
export class UndiciResponseTooLargeError extends Error {
  readonly code = 'RESPONSE_TOO_LARGE'
  constructor(maxBytes: number) {
    super(`the answer is larger than ${maxBytes} bytes`)
    this.name = 'UndiciResponseTooLargeError'
  }
}

/**
 * One request on `dispatcher`, its answer collected as text, through undici's dispatch API:
 * no stream object or abort signal per request, so the shipper runs less of the stream and
 * event code the app's own requests use (the same reason as above: each new shape V8 meets
 * there is paid for in the app's calls). Measured as above, against undici's request() on the
 * private Agent with a body stream and AbortSignal.timeout: +10 ± 15 against +38 ± 11 µs CPU per
 * app call (24 rounds).
 */
export function undiciSend(dispatcher: Dispatcher, url: string | URL, o: UndiciSendOptions): Promise<UndiciReply> {
  const u = typeof url === 'string' ? new URL(url) : url
  const maxBytes = o.maxResponseBytes ?? 1024 * 1024
  return new Promise<UndiciReply>((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined
    let failure: Error | undefined
    let statusCode = 0
    let headers: UndiciReply['headers'] = {}
    const chunks: Buffer[] = []
    let size = 0
    // settles at once (a promise settles only once: what undici reports afterwards is ignored),
    // also while the connection is still being made and nothing can be aborted yet
    const fail = (err: Error) => {
      failure ??= err
      clearTimeout(timer)
      reject(failure)
      if (controller && !controller.aborted) controller.abort(failure)
    }
    const timer = setTimeout(() => fail(new UndiciTimeoutError(o.timeoutMs)), o.timeoutMs)
    timer.unref()
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c
        if (failure) c.abort(failure)
      },
      onResponseStart(_c, status, h) {
        statusCode = status
        headers = h
      },
      onResponseData(_c, chunk) {
        size += chunk.length
        if (size > maxBytes) fail(new UndiciResponseTooLargeError(maxBytes))
        else chunks.push(chunk)
      },
      onResponseEnd() {
        clearTimeout(timer)
        if (failure) reject(failure)
        else resolve({ statusCode, headers, text: chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8') })
      },
      onResponseError(_c, err) {
        clearTimeout(timer)
        reject(failure ?? err)
      },
    }
    try {
      dispatcher.dispatch({ origin: u.origin, path: `${u.pathname}${u.search}`, method: o.method, headers: o.headers, body: o.body ?? null }, handler)
    } catch (err) {
      clearTimeout(timer)
      reject(err)
    }
  })
}

/** For tests: whether the Agent came without the entry point. */
export function undiciIsPrivate(): boolean {
  return undici().private
}
