import { gunzip } from 'node:zlib'
import { promisify } from 'node:util'
import type { Request } from 'hyper-express'
import { AppError } from './errors.js'

const gunzipAsync = promisify(gunzip)

const tooLarge = (limit: number) =>
  new AppError('PAYLOAD_TOO_LARGE', `request body exceeds the ${Math.round(limit / 1024 / 1024)} MB limit`, {
    limitBytes: limit,
  })

/** Streams a chunked body, counting bytes as they arrive so an endless upload is cut off at the limit. */
function readChunked(req: Request, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let done = false
    req.on('data', (chunk: Buffer) => {
      if (done) return
      size += chunk.byteLength
      if (size > limit) {
        done = true
        req.pause()
        reject(tooLarge(limit))
        return
      }
      chunks.push(Buffer.from(chunk))
    })
    req.on('end', () => {
      if (done) return
      done = true
      resolve(Buffer.concat(chunks, size))
    })
    req.on('error', (err: Error) => {
      if (done) return
      done = true
      reject(err)
    })
  })
}

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
  if (chunked) raw = await readChunked(req, limit)
  else if (length > 0) raw = await req.buffer()
  else return Buffer.alloc(0)
  if (encoding !== 'gzip' || raw.byteLength === 0) return raw
  try {
    return await gunzipAsync(raw, { maxOutputLength: limit })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(limit)
    throw new AppError('MALFORMED_JSON', 'request body is not valid gzip')
  }
}

/** Parses a JSON body; hyper-express's own req.json() silently returns {} for malformed input. */
export function parseJson(raw: Buffer): unknown {
  if (raw.byteLength === 0) return undefined
  try {
    return JSON.parse(raw.toString('utf8'))
  } catch (err) {
    throw new AppError('MALFORMED_JSON', `request body is not valid JSON: ${(err as Error).message}`)
  }
}
