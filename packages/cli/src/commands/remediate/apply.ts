import { Args } from '@oclif/core'
import { REMEDIATION_ACTIONS, remediationRequestSchema, toIssues, type Remediation } from '@llmguard/shared'
import { BaseCommand } from '../../base.js'
import { usage } from '../../lib/errors.js'
import { checkId, idArg } from '../../lib/ids.js'
import { remediationTable } from '../../lib/remediations.js'

const NUMERIC = new Set(['threshold', 'limitPerMinute'])

export default class RemediateApply extends BaseCommand<typeof RemediateApply> {
  static override summary = "Apply a remediation action to an incident's project policy: ACTION [NAME=VALUE …]"
  static override description = `Actions: ${REMEDIATION_ACTIONS.join(', ')}. The policy changes at once; \`remediate rollback\` restores exactly what the action changed.`
  static override examples = [
    '<%= config.bin %> remediate apply 5a7e… switch_model to=gpt-4o-mini from=gpt-4o',
    '<%= config.bin %> remediate apply 5a7e… increase_safety_threshold threshold=60',
    '<%= config.bin %> remediate apply 5a7e… disable_endpoint endpoint=embeddings',
    '<%= config.bin %> remediate apply 5a7e… rate_limit_user userId=user-42 limitPerMinute=10 --json',
    '<%= config.bin %> remediate apply 5a7e… change_system_prompt systemPrompt="Answer briefly."',
    '<%= config.bin %> remediate apply 5a7e… reset_settings',
  ]
  // only the NAME=VALUE pairs repeat: a variadic last argument, not `strict = false` (with which
  // oclif shows every argument as repeatable)
  static override usage = 'remediate apply INCIDENT ACTION [NAME=VALUE...]'
  static override args = {
    incident: idArg('incident'),
    action: Args.string({ description: 'action type', required: true, options: [...REMEDIATION_ACTIONS] }),
    parameters: Args.string({ description: "the action's parameters as NAME=VALUE (see the examples)", multiple: true }),
  }

  async run(): Promise<Remediation> {
    const id = checkId('incident', this.args.incident)
    const parameters: Record<string, unknown> = {}
    for (const pair of this.args.parameters ?? []) {
      const eq = pair.indexOf('=')
      if (eq <= 0) throw usage(`expected NAME=VALUE, got "${pair}"`)
      const name = pair.slice(0, eq)
      const value = pair.slice(eq + 1)
      parameters[name] = NUMERIC.has(name) && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value
    }
    const body = { actionType: this.args.action, parameters }
    const checked = remediationRequestSchema.safeParse(body)
    if (!checked.success) throw usage(toIssues(checked.error).map((i) => (i.path ? `${i.path.replace(/^parameters\./, '')}: ${i.message}` : i.message)).join('; '))
    const remediation = await this.session.post<Remediation>(`/v1/incidents/${id}/remediations`, body)
    this.log(remediationTable([remediation]))
    return remediation
  }
}
