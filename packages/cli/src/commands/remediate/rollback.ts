import type { Remediation } from '@llmguard/shared'
import { BaseCommand } from '../../base.js'
import { checkId, idArg } from '../../lib/ids.js'

export default class RemediateRollback extends BaseCommand<typeof RemediateRollback> {
  static override summary = 'Roll a remediation back: restores exactly the policy fields it changed'
  static override description = 'Refused with ROLLBACK_CONFLICT when a later action has changed those fields since.'
  static override examples = ['<%= config.bin %> remediate rollback 9c2d…']
  static override args = { id: idArg('remediation') }

  async run(): Promise<Remediation> {
    const r = await this.session.post<Remediation>(`/v1/remediations/${checkId('remediation', this.args.id)}/rollback`)
    this.log(`rolled back ${r.actionType} (${r.id})`)
    return r
  }
}
