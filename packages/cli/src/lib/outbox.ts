import { createHash } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { Flags } from '@oclif/core'
import { SqliteStore, type ParkedRow } from '@llmguard/sdk'
import { CliError, usage } from './errors.js'

export const outboxFlags = {
  outbox: Flags.string({ description: "the outbox file (default: the SDK's default file for --api-key and the collector)", env: 'LLMGUARD_OUTBOX' }),
  'api-key': Flags.string({ description: 'the API key the app ships with', env: 'LLMGUARD_API_KEY' }),
}

/**
 * The SDK's default outbox path for an endpoint and key (packages/sdk/src/options.ts
 * `defaultOutboxPath`, which the SDK does not export): one file per endpoint and key.
 */
export function sdkDefaultOutbox(endpoint: string, apiKey: string | undefined): string {
  const tag = createHash('sha256').update(`${endpoint.replace(/\/+$/, '')}\n${apiKey ?? ''}`).digest('hex').slice(0, 16)
  return join(homedir(), '.llmguard', `outbox-${tag}.sqlite`)
}

/** Every outbox file in the SDK's default directory. */
export function knownOutboxes(): string[] {
  const dir = join(homedir(), '.llmguard')
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((f) => /^outbox-[0-9a-f]+\.sqlite$/.test(f))
    .map((f) => join(dir, f))
}

/**
 * `--outbox`, else the SDK's default file for `--api-key` and `endpoint`: the collector the
 * records ship to (`--collector` / `LLMGUARD_ENDPOINT`, else the one logged in to), the same one
 * `flush` and `replay` send them to. Asked for only when it names the file.
 */
export function resolveOutbox(flags: { outbox?: string; 'api-key'?: string }, endpoint: () => string): string | undefined {
  if (flags.outbox) return flags.outbox
  if (flags['api-key']) return sdkDefaultOutbox(endpoint(), flags['api-key'])
  return undefined
}

export interface OutboxState {
  path: string
  queued: number
  parked: number
  droppedTotal: number
  parkedRecords: (Omit<ParkedRow, 'body'> & { model: string | null })[]
}

/**
 * Opens an existing outbox file (never creates one): OUTBOX_NOT_FOUND when there is none,
 * OUTBOX_UNREADABLE, naming the file and why, when it is not an outbox or cannot be opened.
 */
export function openOutbox(path: string, forReading = false): SqliteStore {
  if (!existsSync(path)) throw new CliError('OUTBOX_NOT_FOUND', `no outbox at ${path}`)
  try {
    return new SqliteStore(path, { busyTimeoutMs: 1_000, forReading })
  } catch (err) {
    throw new CliError('OUTBOX_UNREADABLE', `cannot open the outbox ${path} (${(err as Error).message})`)
  }
}

/** Reads an existing outbox file (never creates one). */
export function readOutbox(path: string, parkedLimit = 20): OutboxState {
  // status and doctor only read: another user's outbox, or one on a read-only mount, still shows
  const store = openOutbox(path, true)
  try {
    return {
      path,
      queued: store.count(),
      parked: store.parkedCount(),
      droppedTotal: store.droppedTotal(),
      parkedRecords: store.listParked(parkedLimit).map(({ body, ...row }) => ({ ...row, model: modelOf(body) })),
    }
  } finally {
    store.close()
  }
}

function modelOf(body: string): string | null {
  try {
    return (JSON.parse(body) as { model?: string }).model ?? null
  } catch {
    return null
  }
}

export function requireOutbox(flags: { outbox?: string; 'api-key'?: string }, endpoint: () => string): string {
  const path = resolveOutbox(flags, endpoint)
  if (!path) throw usage('which outbox? pass --outbox FILE or --api-key KEY (or set LLMGUARD_OUTBOX / LLMGUARD_API_KEY)')
  if (!existsSync(path)) throw new CliError('OUTBOX_NOT_FOUND', `no outbox at ${path}`)
  return path
}
