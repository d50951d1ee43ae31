import type { Page, Remediation } from '@llmguard/shared'
import { BaseCommand, pageFlags } from '../../base.js'
import { checkId, idArg } from '../../lib/ids.js'
import { remediationTable } from '../../lib/remediations.js'
import { emptyPage, pageNote } from '../../lib/output.js'

export default class RemediateList extends BaseCommand<typeof RemediateList> {
  static override summary = "An incident's remediation actions, newest first, with their state"
  static override examples = ['<%= config.bin %> remediate list 5a7e…', '<%= config.bin %> remediate list 5a7e… --json']
  static override args = { incident: idArg('incident') }
  static override flags = { ...pageFlags }

  async run(): Promise<Page<Remediation>> {
    const id = checkId('incident', this.args.incident)
    const page = await this.session.get<Page<Remediation>>(`/v1/incidents/${id}/remediations`, { page: this.flags.page, limit: this.flags.limit })
    this.log(page.items.length ? remediationTable(page.items) : emptyPage(page, 'no remediation actions for this incident'))
    const note = pageNote(page)
    if (note) this.log(note)
    return page
  }
}
