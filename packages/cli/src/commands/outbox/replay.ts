import { Flags } from '@oclif/core'
import { BaseCommand } from '../../base.js'
import { withSpinner } from '../../lib/output.js'
import { usage } from '../../lib/errors.js'
import { openOutbox, outboxFlags, requireOutbox } from '../../lib/outbox.js'
import { report, shipOutbox, type ShipResult } from '../../lib/ship.js'

export default class OutboxReplay extends BaseCommand<typeof OutboxReplay> {
  static override summary = 'Send parked records (refused by the collector) again, e.g. after raising a plan limit'
  static override examples = ['<%= config.bin %> outbox replay --api-key lg_…', '<%= config.bin %> outbox replay --seq 12 --seq 13 --json']
  static override flags = {
    ...outboxFlags,
    seq: Flags.integer({ description: 'only this parked record (see `outbox status`); repeatable', multiple: true, min: 1 }),
    timeout: Flags.integer({ description: 'give up after this many seconds', min: 1, default: 30 }),
  }

  async run(): Promise<ShipResult> {
    const outbox = requireOutbox(this.flags, () => this.collectorUrl)
    if (this.flags.seq) {
      // a seq that is not parked would be skipped in silence: say so before anything moves
      const store = openOutbox(outbox)
      let parked: Set<number>
      try {
        parked = new Set(store.listParked(Number.MAX_SAFE_INTEGER).map((r) => r.seq))
      } finally {
        store.close()
      }
      const missing = this.flags.seq.filter((seq) => !parked.has(seq))
      if (missing.length) throw usage(`no parked record with seq ${missing.join(', ')} in ${outbox} (see \`llmguard outbox status\`)`)
    }
    const result = await withSpinner(
      'replaying',
      () => shipOutbox({ outbox, apiKey: this.flags['api-key'], endpoint: this.collectorUrl, replay: this.flags.seq ?? 'all', timeoutMs: this.flags.timeout * 1000 }),
      !this.jsonEnabled() && Boolean(process.stderr.isTTY),
    )
    report(this, result)
    return result
  }
}
