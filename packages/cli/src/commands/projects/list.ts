import type { Page, Project } from '@llmguard/shared'
import { BaseCommand, pageFlags } from '../../base.js'
import { c, emptyPage, pageNote, relativeTime, table } from '../../lib/output.js'

export default class ProjectsList extends BaseCommand<typeof ProjectsList> {
  static override summary = 'List your projects (newest first)'
  static override examples = ['<%= config.bin %> projects list', '<%= config.bin %> projects list --json']
  static override flags = { ...pageFlags }

  async run(): Promise<Page<Project>> {
    const page = await this.session.get<Page<Project>>('/v1/projects', { page: this.flags.page, limit: this.flags.limit })
    const current = this.cliConfig.projectId
    if (!page.items.length) this.log(emptyPage(page, 'no projects yet: create one with `llmguard projects create NAME`'))
    else
      this.log(
        table(page.items, [
          // a `*` beside the default project, nothing beside the others; no column without it
          ...(page.items.some((p) => p.id === current) ? [{ header: '', get: (p: Project) => (p.id === current ? '*' : ''), empty: '', paint: c.green }] : []),
          { header: 'ID', get: (p) => p.id },
          { header: 'NAME', get: (p) => p.name, max: 40 },
          { header: 'CREATED', get: (p) => relativeTime(p.createdAt) },
        ]),
      )
    const note = pageNote(page)
    if (note) this.log(note)
    return page
  }
}
