import { Flags } from '@oclif/core'
import { BaseCommand } from '../../base.js'
import { withSpinner } from '../../lib/output.js'
import { outboxFlags, requireOutbox } from '../../lib/outbox.js'
import { report, shipOutbox, type ShipResult } from '../../lib/ship.js'

export default class OutboxFlush extends BaseCommand<typeof OutboxFlush> {
  static override summary = 'Ship what the outbox holds now'
  static override examples = ['LLMGUARD_API_KEY=lg_… <%= config.bin %> outbox flush', '<%= config.bin %> outbox flush --outbox ./outbox.sqlite --api-key lg_… --json']
  static override flags = { ...outboxFlags, timeout: Flags.integer({ description: 'give up after this many seconds', min: 1, default: 30 }) }

  async run(): Promise<ShipResult> {
    const outbox = requireOutbox(this.flags, () => this.collectorUrl)
    const result = await withSpinner('shipping', () => shipOutbox({ outbox, apiKey: this.flags['api-key'], endpoint: this.collectorUrl, timeoutMs: this.flags.timeout * 1000 }), !this.jsonEnabled() && Boolean(process.stderr.isTTY))
    report(this, result)
    return result
  }
}
