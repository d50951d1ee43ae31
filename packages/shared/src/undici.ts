import { createRequire } from 'node:module'
import type { Agent as UndiciAgent, Dispatcher } from 'undici'

/*
 * undici's Agent and request(), loaded without undici's entry point.
 *
 * The entry point (`import … from 'undici'`) installs an Agent of its own as the process-wide
 * dispatcher of the global `fetch` when none is set yet. Imported by the SDK at an app's start,
 * it moved the app's own fetch calls (the openai client's) from Node's built-in undici onto
 * this copy, the one the SDK ships batches with, so the app's requests and the shipper's ran
 * through the same functions: V8 re-optimised them for both call sites, and the app's calls
 * paid for it. Measured with `pnpm bench:sdk`'s worker: a bare client with a batch POSTed every
 * second through the same undici as its fetch cost +46 ± 17 µs CPU per call; through a private
 * one (this module) +3 ± 14, through node:http +2 ± 13 (20 interleaved rounds).
 *
 * The two files are part of undici's published package (lib/dispatcher/agent.js,
 * lib/api/api-request.js) and the version is pinned; if a later version moves them, the entry
 * point is the fallback, with its old side effect.
 */

type RequestFn = (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>

export interface UndiciParts {
  Agent: typeof UndiciAgent
  request: RequestFn
  /** Whether the parts came without the entry point's side effect. */
  private: boolean
}

/** Loads the parts; `load` is node's require (a parameter so the fallback can be tested). */
export function loadUndici(load: (id: string) => unknown): UndiciParts {
  try {
    const Agent = load('undici/lib/dispatcher/agent.js') as typeof UndiciAgent
    const request = load('undici/lib/api/api-request.js') as RequestFn
    if (typeof Agent === 'function' && typeof request === 'function') return { Agent, request, private: true }
  } catch {
    // moved in a later undici: the entry point below
  }
  const undici = load('undici') as { Agent: typeof UndiciAgent; request: (url: string, options: object) => Promise<Dispatcher.ResponseData> }
  return {
    Agent: undici.Agent,
    request(this: Dispatcher, options: Dispatcher.RequestOptions) {
      const { origin, path, ...rest } = options
      return undici.request(`${String(origin)}${path}`, { ...rest, dispatcher: this })
    },
    private: false,
  }
}

let parts: UndiciParts | undefined

function undici(): UndiciParts {
  parts ??= loadUndici(createRequire(import.meta.url))
  return parts
}

/** A new undici Agent (connection pools with keep-alive). */
export function createAgent(options?: UndiciAgent.Options): UndiciAgent {
  return new (undici().Agent)(options)
}

export type UndiciRequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher: Dispatcher }

/** undici's `request(url, options)`, always on the given dispatcher, never the global one. */
export function undiciRequest(url: string | URL, options: UndiciRequestOptions): Promise<Dispatcher.ResponseData> {
  const u = typeof url === 'string' ? new URL(url) : url
  const { dispatcher, ...rest } = options
  return undici().request.call(dispatcher, { ...rest, origin: u.origin, path: `${u.pathname}${u.search}` })
}

/** For tests: whether the loaded parts came without the entry point. */
export function undiciIsPrivate(): boolean {
  return undici().private
}
