import { BaseCommand, projectFlag } from '../../base.js'
import { checkKeyId, keyIdArg } from './rotate.js'

export default class KeysRevoke extends BaseCommand<typeof KeysRevoke> {
  static override summary = 'Revoke an API key'
  static override examples = ['<%= config.bin %> keys revoke 8d1e…']
  static override args = { keyId: keyIdArg }
  static override flags = { project: projectFlag }

  async run(): Promise<{ id: string; revoked: boolean }> {
    const id = this.projectId(this.flags.project)
    await this.session.delete(`/v1/projects/${id}/keys/${checkKeyId(this.args.keyId)}`)
    this.log(`revoked key ${this.args.keyId}`)
    return { id: this.args.keyId, revoked: true }
  }
}
