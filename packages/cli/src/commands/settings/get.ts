import { projectSettingsResponseSchema, type ProjectSettingsResponse } from '@llmguard/shared'
import { BaseCommand, projectFlag } from '../../base.js'
import { keyValues } from '../../lib/output.js'

export default class SettingsGet extends BaseCommand<typeof SettingsGet> {
  static override summary = "Show a project's settings (defaults included)"
  static override examples = ['<%= config.bin %> settings get', '<%= config.bin %> settings get --project 3f0c… --json']
  static override flags = { project: projectFlag }

  async run(): Promise<ProjectSettingsResponse> {
    const id = this.projectId(this.flags.project)
    const settings = await this.session.get<ProjectSettingsResponse>(`/v1/projects/${id}/settings`, undefined, projectSettingsResponseSchema)
    const { projectId: _p, updatedAt, ...fields } = settings
    this.log(keyValues([...Object.entries(fields), ['updatedAt', updatedAt]]))
    return settings
  }
}
