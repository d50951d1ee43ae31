import type { Project } from '@llmguard/shared'
import { BaseCommand } from '../../base.js'
import { safe } from '../../lib/output.js'
import { updateConfig } from '../../lib/config.js'
import { checkId, idArg } from '../../lib/ids.js'

export default class ProjectsUse extends BaseCommand<typeof ProjectsUse> {
  static override summary = 'Make a project the default for commands run without --project'
  static override examples = ['<%= config.bin %> projects use 3f0c2a1e-…']
  static override args = { id: idArg('project') }

  async run(): Promise<Project> {
    const project = await this.session.get<Project>(`/v1/projects/${checkId('project', this.args.id)}`)
    updateConfig((cfg) => ({ ...cfg, projectId: project.id }), this.configFile)
    this.log(`default project: ${safe(project.name)} (${project.id})`)
    return project
  }
}
