import type { Incident } from '@llmguard/shared'
import { BaseCommand } from '../../base.js'
import { safe } from '../../lib/output.js'
import { idArg } from '../../lib/ids.js'
import { setIncidentStatus } from '../../lib/transition.js'

export default class IncidentsResolve extends BaseCommand<typeof IncidentsResolve> {
  static override summary = 'Resolve an incident'
  static override examples = ['<%= config.bin %> incidents resolve 5a7e…']
  static override args = { id: idArg('incident') }

  async run(): Promise<Incident> {
    const incident = await setIncidentStatus(this.session, this.args.id, 'resolved')
    this.log(`resolved: ${safe(incident.title)}`)
    return incident
  }
}
