import { Args } from '@oclif/core'
import type { CreatedApiKey } from '@llmguard/shared'
import { BaseCommand, projectFlag } from '../../base.js'
import { usage } from '../../lib/errors.js'
import { c } from '../../lib/output.js'

export const keyIdArg = Args.string({ description: 'key id (see `llmguard keys list`)', required: true })

export function checkKeyId(id: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f-]{27}$/i.test(id)) throw usage(`not a key id: "${id}" (ids look like 3f0c2a1e-…; see \`llmguard keys list\`)`)
  return id
}

export default class KeysRotate extends BaseCommand<typeof KeysRotate> {
  static override summary = 'Replace a key with a new one; the old one stops working at once'
  static override examples = ['<%= config.bin %> keys rotate 8d1e…']
  static override args = { keyId: keyIdArg }
  static override flags = { project: projectFlag }

  async run(): Promise<CreatedApiKey> {
    const id = this.projectId(this.flags.project)
    const key = await this.session.post<CreatedApiKey>(`/v1/projects/${id}/keys/${checkKeyId(this.args.keyId)}/rotate`)
    this.log(`${c.green('✓')} key ${this.args.keyId} revoked; its replacement ${key.id} (shown once):\n\n  ${c.bold(key.key)}\n`)
    return key
  }
}
