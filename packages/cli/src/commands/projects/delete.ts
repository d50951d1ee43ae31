import { Flags } from '@oclif/core'
import { BaseCommand } from '../../base.js'
import { updateConfig } from '../../lib/config.js'
import { checkId, idArg } from '../../lib/ids.js'
import { confirm } from '../../lib/prompt.js'

export default class ProjectsDelete extends BaseCommand<typeof ProjectsDelete> {
  static override summary = 'Delete a project with its keys, settings and logged data'
  static override examples = ['<%= config.bin %> projects delete 3f0c2a1e-… --yes']
  static override args = { id: idArg('project') }
  static override flags = { yes: Flags.boolean({ char: 'y', description: 'do not ask for confirmation' }) }

  async run(): Promise<{ id: string; deleted: boolean }> {
    // the id itself, never the default project: an empty or mistyped id must not delete that one
    const id = checkId('project', this.args.id)
    if (!this.flags.yes) {
      // name it: an id alone is easy to mistake for another
      const project = await this.session.get<{ name: string }>(`/v1/projects/${id}`)
      const ok = await confirm(`Delete project "${project.name}" (${id}) and all its data?`, 'yes')
      // declining is an answer, not an error
      if (!ok) {
        this.log('not deleted')
        return { id, deleted: false }
      }
    }
    await this.session.delete(`/v1/projects/${id}`)
    if (this.cliConfig.projectId === id) updateConfig(({ projectId: _p, ...rest }) => rest, this.configFile)
    this.log(`deleted project ${id}`)
    return { id, deleted: true }
  }
}
