import { Args } from '@oclif/core'
import type { LogDetail } from '@llmguard/shared'
import { BaseCommand, projectFlag } from '../../base.js'
import { checkId } from '../../lib/ids.js'
import { c, keyValues, relativeTime, safe, usd } from '../../lib/output.js'

export default class LogsShow extends BaseCommand<typeof LogsShow> {
  static override summary = 'Show one logged request with every stored field'
  static override examples = ['<%= config.bin %> logs show 0b6f…', '<%= config.bin %> logs show 0b6f… --json']
  static override args = { id: Args.string({ description: 'request id', required: true }) }
  static override flags = { project: projectFlag }

  async run(): Promise<LogDetail> {
    const project = this.projectId(this.flags.project)
    const r = await this.session.get<LogDetail>(`/v1/projects/${project}/logs/${checkId('request', this.args.id)}`)
    this.log(
      keyValues([
        ['id', r.id],
        ['timestamp', `${r.timestamp} (${relativeTime(r.timestamp)})`],
        ['received', `${r.createdAt} (${relativeTime(r.createdAt)})`],
        ['model', r.requestedModel ? `${r.model} (asked for ${r.requestedModel})` : r.model],
        ['endpoint', r.stream === null ? r.endpoint : `${r.endpoint ?? '-'}${r.stream ? ', streamed' : ', not streamed'}`],
        ['status', r.status === 'error' ? `error ${r.error ? `${r.error.type}: ${r.error.message}` : ''}` : 'success', r.status === 'error' ? c.red : String],
        ['latency', `${r.latency} ms${r.timeToFirstToken !== null ? `, first token ${r.timeToFirstToken} ms` : ''}`],
        ['tokens', `${r.tokens}${r.promptTokens !== null ? ` (${tokenSplit(r)})` : ''}`],
        ['cost', r.cost === null ? 'unpriced' : usd(r.cost)],
        ['risk', `${r.riskScore}${r.riskReasons.length ? `: ${r.riskReasons.map((x) => `${x.code} ${x.points >= 0 ? '+' : ''}${x.points}${x.detail ? ` (${x.detail})` : ''}`).join(', ')}` : ''}`],
        ['user', r.userId],
        ['policy', r.policyViolation],
        ['metadata', Object.keys(r.metadata).length ? r.metadata : null],
      ]),
    )
    // newlines and tabs kept: the prompt as it was written, but never a control the terminal would obey
    this.log(`\n${c.bold('prompt')}\n${safe(r.prompt, { lines: true })}\n\n${c.bold('response')}\n${r.response ? safe(r.response, { lines: true }) : c.dim('(empty)')}`)
    return r
  }
}

/** prompt (of it cached) and completion (of it reasoning) tokens, as far as they are known. */
function tokenSplit(r: LogDetail): string {
  const prompt = `prompt ${r.promptTokens}${r.cachedTokens ? `, ${r.cachedTokens} cached` : ''}`
  const completion = `completion ${r.completionTokens ?? 0}${r.reasoningTokens ? `, ${r.reasoningTokens} reasoning` : ''}`
  return `${prompt}; ${completion}`
}
