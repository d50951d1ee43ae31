import type { Incident } from '@llmguard/shared'
import { BaseCommand } from '../../base.js'
import { checkId, idArg } from '../../lib/ids.js'
import { incidentDetail } from '../../lib/incidents.js'
import { withSpinner } from '../../lib/output.js'

export default class IncidentsRca extends BaseCommand<typeof IncidentsRca> {
  static override summary = "Regenerate an incident's root-cause analysis"
  static override examples = ['<%= config.bin %> incidents rca 5a7e…', '<%= config.bin %> incidents rca 5a7e… --json']
  static override args = { id: idArg('incident') }

  async run(): Promise<Incident> {
    const id = checkId('incident', this.args.id)
    const incident = await withSpinner('analysing', () => this.session.post<Incident>(`/v1/incidents/${id}/rca`), !this.jsonEnabled() && Boolean(process.stderr.isTTY))
    this.log(incidentDetail(incident))
    return incident
  }
}
