import type { CreatedApiKey } from '@llmguard/shared'
import { BaseCommand, projectFlag } from '../../base.js'
import { checkId, idArg } from '../../lib/ids.js'
import { c } from '../../lib/output.js'

export default class KeysRotate extends BaseCommand<typeof KeysRotate> {
  static override summary = 'Replace a key with a new one; the old one stops working at once'
  static override examples = ['<%= config.bin %> keys rotate 8d1e…']
  static override args = { keyId: idArg('key') }
  static override flags = { project: projectFlag }

  async run(): Promise<CreatedApiKey> {
    const id = this.projectId(this.flags.project)
    const key = await this.session.post<CreatedApiKey>(`/v1/projects/${id}/keys/${checkId('key', this.args.keyId)}/rotate`)
    this.log(`${c.green('✓')} key ${this.args.keyId} revoked; its replacement ${key.id} (shown once):\n\n  ${c.bold(key.key)}\n`)
    // the SDK's default outbox file is per key: what apps queued under the old one stays there
    this.log(
      `Apps still on the old key keep their records in its outbox file (\`${this.config.bin} outbox status\` lists the files); ` +
        `after switching them to the new key, ship those with \`${this.config.bin} outbox flush --outbox FILE --api-key <new key>\`.`,
    )
    return key
  }
}
