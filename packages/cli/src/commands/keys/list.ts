import type { ApiKey, Page } from '@llmguard/shared'
import { BaseCommand, pageFlags, projectFlag } from '../../base.js'
import { c, emptyPage, pageNote, relativeTime, table } from '../../lib/output.js'

export default class KeysList extends BaseCommand<typeof KeysList> {
  static override summary = "List a project's API keys (the keys themselves are never shown again)"
  static override examples = ['<%= config.bin %> keys list', '<%= config.bin %> keys list --project 3f0c… --json']
  static override flags = { project: projectFlag, ...pageFlags }

  async run(): Promise<Page<ApiKey>> {
    const id = this.projectId(this.flags.project)
    const page = await this.session.get<Page<ApiKey>>(`/v1/projects/${id}/keys`, { page: this.flags.page, limit: this.flags.limit })
    if (!page.items.length) this.log(emptyPage(page, 'no API keys: create one with `llmguard keys create`'))
    else
      this.log(
        table(page.items, [
          { header: 'ID', get: (k) => k.id },
          { header: 'NAME', get: (k) => k.name, max: 30 },
          { header: 'KEY', get: (k) => `lg_…${k.last4}` },
          { header: 'STATUS', get: (k) => (k.revokedAt ? 'revoked' : 'active'), paint: (s, k) => (k.revokedAt ? c.dim(s) : c.green(s)) },
          { header: 'CREATED', get: (k) => relativeTime(k.createdAt) },
        ]),
      )
    const note = pageNote(page)
    if (note) this.log(note)
    return page
  }
}
