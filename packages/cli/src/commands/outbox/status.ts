import { BaseCommand } from '../../base.js'
import { c, keyValues, relativeTime, table } from '../../lib/output.js'
import { knownOutboxes, outboxFlags, readOutbox, resolveOutbox, type OutboxState } from '../../lib/outbox.js'

export default class OutboxStatus extends BaseCommand<typeof OutboxStatus> {
  static override summary = "The SDK's local outbox: records waiting to ship and records the collector refused (parked)"
  static override description = 'Without --outbox or --api-key, shows every outbox file in ~/.llmguard.'
  static override examples = ['<%= config.bin %> outbox status', '<%= config.bin %> outbox status --outbox ./outbox.sqlite --json']
  static override flags = { ...outboxFlags }

  async run(): Promise<{ outboxes: OutboxState[] }> {
    const one = resolveOutbox(this.flags, () => this.collectorUrl)
    const paths = one ? [one] : knownOutboxes()
    const outboxes = paths.map((p) => readOutbox(p))
    if (!outboxes.length) this.log('no outbox files found in ~/.llmguard (pass --outbox FILE)')
    for (const o of outboxes) {
      this.log(
        keyValues([
          ['outbox', o.path],
          ['queued', o.queued, o.queued ? c.yellow : String],
          ['parked', o.parked, o.parked ? c.red : String],
          ['dropped', o.droppedTotal],
        ]),
      )
      if (o.parkedRecords.length) {
        this.log('')
        this.log(
          table(o.parkedRecords, [
            { header: 'SEQ', get: (r) => r.seq, align: 'right' },
            { header: 'ID', get: (r) => r.id },
            { header: 'MODEL', get: (r) => r.model, max: 24 },
            { header: 'CODE', get: (r) => r.code },
            { header: 'PARKED', get: (r) => relativeTime(r.parkedAt) },
            { header: 'REASON', get: (r) => r.message, max: 60 },
          ]),
        )
        if (o.parked > o.parkedRecords.length) this.log(c.dim(`… and ${o.parked - o.parkedRecords.length} more`))
        this.log(c.dim('replay them with `llmguard outbox replay` once the cause is fixed'))
      }
      this.log('')
    }
    return { outboxes }
  }
}
