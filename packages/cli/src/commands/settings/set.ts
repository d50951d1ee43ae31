import { Args } from '@oclif/core'
import { projectSettingsFields, projectSettingsPatchSchema, toIssues, type ProjectSettingsResponse } from '@llmguard/shared'
import { BaseCommand, projectFlag } from '../../base.js'
import { usage } from '../../lib/errors.js'
import { keyValues } from '../../lib/output.js'

/** `true`, `42`, `null`, `["a","b"]`, `{"k":1}` are JSON; anything else is a string. */
function parseValue(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

export default class SettingsSet extends BaseCommand<typeof SettingsSet> {
  static override summary = 'Change project settings: NAME=VALUE …'
  static override description =
    'Values are JSON when they parse as JSON (numbers, true/false, null, arrays, objects), else strings: quote a number meant as text as JSON (systemPrompt=\'"123"\'). ' +
    'Fields: preferredModel, safetyThreshold, rateLimit, systemPrompt, blockOnRisk, metadata, sensitiveKeywords, priceOverrides, autoRemediation, incident* thresholds (see docs/api.md).'
  static override examples = [
    '<%= config.bin %> settings set safetyThreshold=70 blockOnRisk=true',
    `<%= config.bin %> settings set systemPrompt="You are a helpful assistant." --project 3f0c…`,
    `<%= config.bin %> settings set 'sensitiveKeywords=["project x"]' --json`,
  ]
  static override strict = false
  static override args = { setting: Args.string({ description: 'NAME=VALUE (one or more)', required: true }) }
  static override flags = { project: projectFlag }

  async run(): Promise<ProjectSettingsResponse> {
    const id = this.projectId(this.flags.project)
    const patch: Record<string, unknown> = {}
    for (const pair of this.rest) {
      const eq = pair.indexOf('=')
      if (eq <= 0) throw usage(`expected NAME=VALUE, got "${pair}"`)
      patch[pair.slice(0, eq).trim()] = parseValue(pair.slice(eq + 1))
    }
    const names = Object.keys(projectSettingsFields)
    const unknown = Object.keys(patch).filter((name) => !names.includes(name))
    if (unknown.length) throw usage(`unknown setting ${unknown.map((n) => `"${n}"`).join(', ')}; the settings are ${names.join(', ')}`)
    const checked = projectSettingsPatchSchema.safeParse(patch)
    if (!checked.success) throw usage(toIssues(checked.error).map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '))
    const settings = await this.session.patch<ProjectSettingsResponse>(`/v1/projects/${id}/settings`, patch)
    this.log(keyValues(Object.keys(patch).map((k) => [k, (settings as Record<string, unknown>)[k]])))
    return settings
  }
}
