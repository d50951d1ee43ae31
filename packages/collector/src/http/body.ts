import * as nodeBuffer from 'node:buffer'
import { gunzip } from 'node:zlib'
import { promisify } from 'node:util'
import type { Request } from 'hyper-express'
import { unstorableText } from '../db/text.js'
import { AppError } from './errors.js'

const gunzipAsync = promisify(gunzip)

/**
 * Thrown when a chunked upload runs far past the limit: the connection is dropped without a
 * response, since draining an endless body to answer politely would let it run forever.
 */
export class ConnectionAbort extends Error {
  override readonly name = 'ConnectionAbort'
}

const tooLarge = (limit: number) =>
  new AppError('PAYLOAD_TOO_LARGE', `request body exceeds the ${Math.round(limit / 1024 / 1024)} MB limit`, {
    limitBytes: limit,
  })

/** The parts of hyper-express 6.17.4's Request body parser used below (version pinned exactly). */
interface BodyParserInternals {
  _body_parser_mode: number
  _body_parser_passthrough: ((chunk: Uint8Array, isLast: boolean) => void) | null
  _body_parser_flush_buffered(): void
}

/** Bodies of a known length up to this many bytes are read into one buffer (see readCounted). */
const WHOLE_BODY_MAX = 1024 * 1024

/**
 * Reads a body, counting bytes as they arrive. Past the limit nothing more is kept; the rest is
 * drained (so the 413 envelope can be sent) up to a hard cap, past which the connection is
 * dropped. `expected` is the Content-Length of a fixed-length body: one that turns out another
 * length is refused.
 *
 * hyper-express's req.buffer() must not read it: it sizes its buffer from the last
 * Content-Length header while uWS frames the body by the first, so a request with two (40, then
 * 2) overflowed that buffer inside uWS's data callback and the process died. Nor does it offer
 * a bounded reader for chunked bodies (req.buffer() keeps everything up to the server-wide
 * max_body_length, and its stream mode delivers no chunked data on this uWS build). So this
 * installs a passthrough in its buffering mode, exactly as its own buffer() does (Request.js,
 * _body_parser_get_received_data), and never throws from it.
 */
function readCounted(req: Request, limit: number, expected?: number): Promise<Buffer> {
  const hardCap = limit * 2 + 1024 * 1024
  const internals = req as unknown as BodyParserInternals
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    // a body of known length up to 1 MiB (an ingest batch) goes straight into one buffer of
    // that length: one allocation and one copy instead of a copy per chunk and their
    // concatenation. Made when its first bytes arrive, not on the header alone (a client that
    // then stalls holds it until its connection times out, as hyper-express's own reader would)
    const wholeLength = expected !== undefined && expected <= WHOLE_BODY_MAX ? expected : undefined
    let whole: Buffer | undefined
    let size = 0
    let done = false
    internals._body_parser_passthrough = (chunk, isLast) => {
      if (done) return
      size += chunk.byteLength
      if (size > hardCap) {
        done = true
        reject(new ConnectionAbort(`request body passed ${hardCap} bytes`))
        return
      }
      // uWS reuses the chunk's memory after this callback returns: copy what is kept
      if (wholeLength !== undefined) {
        whole ??= Buffer.allocUnsafe(wholeLength)
        if (size <= wholeLength) whole.set(chunk, size - chunk.byteLength)
      } else if (size <= limit) chunks.push(Buffer.from(chunk))
      else chunks.length = 0
      if (!isLast) return
      done = true
      if (size > limit) reject(tooLarge(limit))
      else if (expected !== undefined && size !== expected) reject(lengthMismatch(size, expected))
      else resolve(whole ?? Buffer.concat(chunks, size))
    }
    internals._body_parser_mode = 1
    internals._body_parser_flush_buffered()
  })
}

/** A body whose length is not what its Content-Length said (two differing headers, say). */
const lengthMismatch = (size: number, expected: number) =>
  new AppError('VALIDATION_ERROR', `the request body is ${size} bytes, not the ${expected} its Content-Length header gives (send one Content-Length, or chunked)`, {
    issues: [{ path: 'headers.content-length', message: 'does not match the body' }],
  })

/**
 * Reads the request body within `limit` bytes, decompressing gzip (also bounded by `limit`,
 * so a small zip bomb cannot expand past it). Returns an empty buffer when there is no body.
 */
export async function readBody(req: Request, limit: number): Promise<Buffer> {
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase()
  if (encoding !== 'identity' && encoding !== 'gzip' && encoding !== '') {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `Content-Encoding "${encoding}" is not supported; send identity or gzip`)
  }
  const lengthHeader = req.headers['content-length']
  const chunked = (req.headers['transfer-encoding'] ?? '').toLowerCase().includes('chunked')
  const length = lengthHeader === undefined ? 0 : Number(lengthHeader)
  if (!Number.isFinite(length) || length < 0) {
    throw new AppError('VALIDATION_ERROR', 'invalid Content-Length header')
  }
  if (length > limit) throw tooLarge(limit)
  let raw: Buffer
  if (chunked) raw = await readCounted(req, limit)
  else if (length > 0) raw = await readCounted(req, limit, length)
  else return Buffer.alloc(0)
  if (encoding !== 'gzip' || raw.byteLength === 0) return raw
  try {
    return await gunzipAsync(raw, { maxOutputLength: limit })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(limit)
    throw new AppError('MALFORMED_JSON', 'request body is not valid gzip')
  }
}

/**
 * Refuses a body sent as anything but JSON (`application/json`, or a `+json` type), or with no
 * Content-Type at all. Besides saying what the API takes, this keeps a browser on another site
 * from posting to it without asking: a form or a plain `fetch` may send text/plain, a Blob
 * without a type, or form data with no CORS preflight, while JSON always needs one (which the
 * CORS allow-list then answers).
 */
export function requireJsonContentType(contentType: string | undefined): void {
  const type = (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase()
  if (type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'))) return
  throw new AppError(
    'UNSUPPORTED_MEDIA_TYPE',
    contentType ? `Content-Type "${contentType.slice(0, 100)}" is not supported: send the body as JSON with Content-Type: application/json` : 'a request body needs Content-Type: application/json',
  )
}

/**
 * Parses a JSON body; hyper-express's own req.json() silently returns {} for malformed input.
 * JSON is UTF-8 (RFC 8259): bytes that are not would be decoded as U+FFFD and stored changed.
 */
export function parseJson(raw: Buffer): unknown {
  if (raw.byteLength === 0) return undefined
  if (!nodeBuffer.isUtf8(raw)) throw new AppError('MALFORMED_JSON', 'request body is not valid UTF-8 (JSON must be sent as UTF-8)')
  try {
    return JSON.parse(decodeUtf8(raw))
  } catch (err) {
    throw new AppError('MALFORMED_JSON', `request body is not valid JSON: ${(err as Error).message}`)
  }
}

const BACKSLASH_U = Buffer.from('\\u', 'latin1')

/**
 * True when JSON text (valid UTF-8, as parseJson requires) holds no `\u` escape. Then no string
 * parsed from it, key or value, can hold what PostgreSQL cannot store: JSON refuses a raw NUL
 * in a string (control characters must be escaped), and valid UTF-8 never decodes to an unpaired
 * surrogate, so both can only come from an escape. Lets a route that checks every string of a
 * big body (ingest's repair) skip the walk for the bodies that need none; a `\\u` (an escaped
 * backslash) only costs the walk.
 */
export function escapeFree(raw: Buffer): boolean {
  return !raw.includes(BACKSLASH_U)
}

/** Missing where Node is built without ICU (so not a named import, which would fail to load). */
const transcode = (nodeBuffer as Partial<typeof nodeBuffer>).transcode

/**
 * Valid UTF-8 as a string. V8 decodes text past ASCII a byte at a time (~3 ns a byte); ICU's
 * converter to UTF-16 and a copy of that are ~30 % faster on an ingest batch (the same string:
 * the input is valid UTF-8, checked first). ASCII keeps V8's own fast path, and a Node built
 * without ICU the plain decoding.
 */
function decodeUtf8(raw: Buffer): string {
  if (transcode === undefined || nodeBuffer.isAscii(raw)) return raw.toString('utf8')
  const utf16 = transcode(raw, 'utf8', 'utf16le')
  return utf16.toString('utf16le')
}

/** What a 400 for text PostgreSQL cannot store says. */
const UNSTORABLE_MESSAGES = {
  nul: 'must not contain NUL characters (\\u0000)',
  surrogate: 'must be well-formed Unicode (it holds an unpaired surrogate)',
} as const

const problemOf = (s: string): string | undefined => {
  const why = unstorableText(s)
  return why && UNSTORABLE_MESSAGES[why]
}

/**
 * The first string in a parsed JSON value, object keys included, that PostgreSQL cannot store:
 * one holding a NUL character (text and jsonb refuse it) or an unpaired UTF-16 surrogate (jsonb
 * refuses its escape). Gives its path (`name`, `records.3.prompt`) and what is wrong, or
 * undefined. Walks with a stack of its own: a deeply nested body must not overflow the call stack.
 */
export function unstorable(value: unknown): { path: string; message: string } | undefined {
  const stack: [unknown, string][] = [[value, '']]
  const join = (path: string, key: string | number) => (path ? `${path}.${key}` : String(key))
  while (stack.length) {
    const [v, path] = stack.pop()!
    if (typeof v === 'string') {
      const message = problemOf(v)
      if (message) return { path, message }
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], join(path, i)])
    } else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v)
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!
        const message = problemOf(key)
        if (message) return { path: join(path, JSON.stringify(key).slice(1, -1)), message }
        stack.push([(v as Record<string, unknown>)[key], join(path, key)])
      }
    }
  }
  return undefined
}

/** A 400 VALIDATION_ERROR if the parsed body or the query holds text PostgreSQL cannot store (see unstorable). */
export function refuseUnstorable(value: unknown, where: 'query' | 'body'): void {
  const found = unstorable(value)
  if (!found) return
  const path = found.path ? `${where}.${found.path}` : where
  throw new AppError('VALIDATION_ERROR', `invalid request ${where}: ${path}: ${found.message}`, { issues: [{ path, message: found.message }] })
}
