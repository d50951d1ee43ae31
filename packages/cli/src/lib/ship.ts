import { LLMGuard } from '@llmguard/sdk'
import { CliError, usage } from './errors.js'
import { openOutbox } from './outbox.js'

export interface ShipResult {
  outbox: string
  replayed: number
  sent: number
  queued: number
  parked: number
  lastError: { code: string; message: string } | null
  warnings: string[]
}

/** Ships an outbox file with the SDK itself (same batching, retries and parking as the app). */
export async function shipOutbox(opts: { outbox: string; apiKey?: string; endpoint: string; replay?: number[] | 'all'; timeoutMs: number }): Promise<ShipResult> {
  if (!opts.apiKey) throw usage('shipping needs the API key: pass --api-key or set LLMGUARD_API_KEY')
  // an app falls back to memory when its outbox cannot be opened; here the file is the point,
  // so one that is not an outbox (or cannot be opened) is an error, as for `outbox status`
  openOutbox(opts.outbox).close()
  const warnings: string[] = []
  const guard = new LLMGuard({
    apiKey: opts.apiKey,
    endpoint: opts.endpoint,
    outbox: opts.outbox,
    policy: false,
    logger: { warn: (m) => warnings.push(m) },
  })
  try {
    const replayed = opts.replay ? guard.replayParked(opts.replay === 'all' ? undefined : opts.replay) : 0
    await guard.flush({ timeoutMs: opts.timeoutMs })
    const s = guard.stats()
    return { outbox: opts.outbox, replayed, sent: s.sent, queued: s.queued, parked: s.parked, lastError: s.lastError && { code: s.lastError.code, message: s.lastError.message }, warnings }
  } finally {
    await guard.shutdown({ timeoutMs: 1_000 })
  }
}

/** One summary line; records left queued with an error are a failure (exit 1). */
export function report(cmd: { log(m: string): void }, r: ShipResult): void {
  cmd.log(`${r.replayed ? `${r.replayed} parked records moved back; ` : ''}${r.sent} sent, ${r.queued} still queued, ${r.parked} parked`)
  if (r.queued && r.lastError) {
    // the SDK's message often names the code already ("Error: connect ECONNREFUSED …")
    const message = r.lastError.message.replace(/^Error: /, '')
    throw new CliError('OUTBOX_NOT_DRAINED', `${r.queued} records are still queued: ${message.includes(r.lastError.code) ? message : `${r.lastError.code}: ${message}`}`)
  }
}
