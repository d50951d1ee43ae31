import type { IncidentDetail } from '@llmguard/shared'
import { BaseCommand } from '../../base.js'
import { checkId, idArg } from '../../lib/ids.js'
import { incidentDetail } from '../../lib/incidents.js'

export default class IncidentsShow extends BaseCommand<typeof IncidentsShow> {
  static override summary = 'Show an incident with its root-cause analysis and related requests'
  static override examples = ['<%= config.bin %> incidents show 5a7e…', '<%= config.bin %> incidents show 5a7e… --json']
  static override args = { id: idArg('incident') }

  async run(): Promise<IncidentDetail> {
    const incident = await this.session.get<IncidentDetail>(`/v1/incidents/${checkId('incident', this.args.id)}`)
    this.log(incidentDetail(incident))
    return incident
  }
}
