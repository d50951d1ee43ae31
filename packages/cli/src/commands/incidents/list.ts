import { Flags } from '@oclif/core'
import { INCIDENT_STATUSES, INCIDENT_TYPES, incidentQuerySchema, type Incident, type Page } from '@llmguard/shared'
import { BaseCommand, pageFlags, projectFlag } from '../../base.js'
import { parseTime } from '../../lib/duration.js'
import { checkQuery } from '../../lib/errors.js'
import { incidentTable } from '../../lib/incidents.js'
import { c, emptyPage, pageNote } from '../../lib/output.js'

export default class IncidentsList extends BaseCommand<typeof IncidentsList> {
  static override summary = "List a project's incidents, most recently active first"
  static override examples = ['<%= config.bin %> incidents list --status open', '<%= config.bin %> incidents list --project 3f0c… --type latency,error_rate --since 7d --json']
  static override flags = {
    project: projectFlag,
    status: Flags.string({ description: `one status or a comma-separated list (${INCIDENT_STATUSES.join(', ')})`, delimiter: ',', multiple: true, options: [...INCIDENT_STATUSES] }),
    type: Flags.string({ description: 'one type or a comma-separated list', delimiter: ',', multiple: true, options: [...INCIDENT_TYPES] }),
    since: Flags.string({ description: 'still active at or after this time (duration like 24h, or a date/time, UTC unless it has an offset)' }),
    until: Flags.string({ description: 'began before this time (duration or date/time, UTC unless it has an offset)' }),
    ...pageFlags,
  }

  async run(): Promise<Page<Incident>> {
    const id = this.projectId(this.flags.project)
    const query = {
      status: this.flags.status?.join(','),
      type: this.flags.type?.join(','),
      startDate: this.flags.since ? parseTime('since', this.flags.since) : undefined,
      endDate: this.flags.until ? parseTime('until', this.flags.until) : undefined,
      page: this.flags.page,
      limit: this.flags.limit,
    }
    // a range that ends before it starts names the flags, before any request
    checkQuery(incidentQuerySchema, query, { startDate: 'since', endDate: 'until' })
    const page = await this.session.get<Page<Incident>>(`/v1/projects/${id}/incidents`, query)
    if (!page.items.length) this.log(emptyPage(page, c.green('no incidents')))
    else {
      this.log(incidentTable(page.items))
      const note = pageNote(page)
      if (note) this.log(note)
    }
    return page
  }
}
