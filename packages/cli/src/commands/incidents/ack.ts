import type { Incident } from '@llmguard/shared'
import { BaseCommand } from '../../base.js'
import { safe } from '../../lib/output.js'
import { idArg } from '../../lib/ids.js'
import { setIncidentStatus } from '../../lib/transition.js'

export default class IncidentsAck extends BaseCommand<typeof IncidentsAck> {
  static override summary = 'Acknowledge an incident (open → acknowledged)'
  static override examples = ['<%= config.bin %> incidents ack 5a7e…']
  static override args = { id: idArg('incident') }

  async run(): Promise<Incident> {
    const incident = await setIncidentStatus(this.session, this.args.id, 'acknowledged')
    this.log(`acknowledged: ${safe(incident.title)}`)
    return incident
  }
}
