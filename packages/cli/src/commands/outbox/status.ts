import { BaseCommand } from '../../base.js'
import { CliError } from '../../lib/errors.js'
import { c, keyValues, relativeTime, table } from '../../lib/output.js'
import { knownOutboxes, outboxFlags, readOutbox, resolveOutbox, type OutboxState } from '../../lib/outbox.js'

export default class OutboxStatus extends BaseCommand<typeof OutboxStatus> {
  static override summary = "The SDK's local outbox: records waiting to ship and records the collector refused (parked)"
  static override description = 'Without --outbox or --api-key, shows every outbox file in ~/.llmguard.'
  static override examples = ['<%= config.bin %> outbox status', '<%= config.bin %> outbox status --outbox ./outbox.sqlite --json']
  static override flags = { ...outboxFlags }

  async run(): Promise<{ outboxes: OutboxState[]; unreadable: { path: string; code: string; message: string }[] }> {
    const one = resolveOutbox(this.flags, () => this.collectorUrl)
    // one outbox asked for: its error is the answer. All of them: one that cannot be read (not
    // an outbox, another user's) is reported in its place and the others are still shown
    if (one) return this.show([readOutbox(one)], [])
    const outboxes: OutboxState[] = []
    const unreadable: { path: string; code: string; message: string }[] = []
    for (const path of knownOutboxes()) {
      try {
        outboxes.push(readOutbox(path))
      } catch (err) {
        if (!(err instanceof CliError)) throw err
        unreadable.push({ path, code: err.code, message: err.message })
      }
    }
    if (!outboxes.length && !unreadable.length) this.log('no outbox files found in ~/.llmguard (pass --outbox FILE)')
    return this.show(outboxes, unreadable)
  }

  private show(outboxes: OutboxState[], unreadable: { path: string; code: string; message: string }[]) {
    for (const u of unreadable) {
      this.log(keyValues([['outbox', u.path], ['error', `${u.message} [${u.code}]`, c.red]]))
      this.log('')
    }
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
    if (unreadable.length) {
      if (!this.jsonEnabled()) throw new CliError('OUTBOX_UNREADABLE', `${unreadable.length} outbox file(s) could not be read (above)`)
      process.exitCode = 1
    }
    return { outboxes, unreadable }
  }
}
