import { Args, Flags } from '@oclif/core'
import type { Project } from '@llmguard/shared'
import { BaseCommand } from '../../base.js'
import { updateConfig } from '../../lib/config.js'
import { c, safe } from '../../lib/output.js'

export default class ProjectsCreate extends BaseCommand<typeof ProjectsCreate> {
  static override summary = 'Create a project'
  static override examples = ['<%= config.bin %> projects create my-app', '<%= config.bin %> projects create my-app --use --json']
  static override args = { name: Args.string({ description: 'project name (1–100 characters)', required: true }) }
  static override flags = { use: Flags.boolean({ description: 'make it the default project' }) }

  async run(): Promise<Project> {
    const project = await this.session.post<Project>('/v1/projects', { name: this.args.name })
    if (this.flags.use) updateConfig((cfg) => ({ ...cfg, projectId: project.id }), this.configFile)
    this.log(`${c.green('✓')} created ${c.bold(safe(project.name))} ${project.id}${this.flags.use ? ' (now the default)' : ''}`)
    return project
  }
}
