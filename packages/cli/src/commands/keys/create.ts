import { Flags } from '@oclif/core'
import type { CreatedApiKey } from '@llmguard/shared'
import { BaseCommand, projectFlag } from '../../base.js'
import { c } from '../../lib/output.js'

export default class KeysCreate extends BaseCommand<typeof KeysCreate> {
  static override summary = 'Create an API key (shown once)'
  static override examples = ['<%= config.bin %> keys create --name production', '<%= config.bin %> keys create --project 3f0c… --json']
  static override flags = { project: projectFlag, name: Flags.string({ description: 'a name to tell keys apart' }) }

  async run(): Promise<CreatedApiKey> {
    const id = this.projectId(this.flags.project)
    const key = await this.session.post<CreatedApiKey>(`/v1/projects/${id}/keys`, this.flags.name ? { name: this.flags.name } : {})
    this.log(`${c.green('✓')} key ${key.id} created. Store it now, it is not shown again:\n\n  ${c.bold(key.key)}\n`)
    return key
  }
}
