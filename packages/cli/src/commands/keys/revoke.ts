import { BaseCommand, projectFlag } from '../../base.js'
import { checkId, idArg } from '../../lib/ids.js'

export default class KeysRevoke extends BaseCommand<typeof KeysRevoke> {
  static override summary = 'Revoke an API key'
  static override examples = ['<%= config.bin %> keys revoke 8d1e…']
  static override args = { keyId: idArg('key') }
  static override flags = { project: projectFlag }

  async run(): Promise<{ id: string; revoked: boolean }> {
    const id = this.projectId(this.flags.project)
    await this.session.delete(`/v1/projects/${id}/keys/${checkId('key', this.args.keyId)}`)
    this.log(`revoked key ${this.args.keyId}`)
    return { id: this.args.keyId, revoked: true }
  }
}
