import { Flags } from '@oclif/core'
import { projectMetricsSchema, type ProjectMetrics } from '@llmguard/shared'
import { BaseCommand, projectFlag } from '../base.js'
import { barChart, c, keyValues, ms, percent, table, usd } from '../lib/output.js'

export default class Metrics extends BaseCommand<typeof Metrics> {
  static override summary = "A project's request, error, latency, token and cost metrics, with a chart of the daily series"
  static override examples = ['<%= config.bin %> metrics', '<%= config.bin %> metrics --project 3f0c… --days 7 --json']
  static override flags = {
    project: projectFlag,
    days: Flags.integer({ char: 'd', description: 'UTC days back, today included (1–365)', min: 1, max: 365, default: 30 }),
    series: Flags.string({ description: 'daily series to chart', options: ['requests', 'errors', 'latency', 'tokens', 'cost'], default: 'requests' }),
  }

  async run(): Promise<ProjectMetrics> {
    const id = this.projectId(this.flags.project)
    const m = await this.session.get<ProjectMetrics>(`/v1/projects/${id}/metrics`, { days: this.flags.days }, projectMetricsSchema)
    this.log(
      keyValues([
        ['requests', m.totalRequests],
        ['errors', `${m.errorCount} (${percent(m.errorRate)})`],
        // no requests, no latency: the API's average of nothing is 0, which reads as very fast
        ['latency', m.totalRequests ? `avg ${ms(m.averageLatency)} · p50 ${ms(m.p50Latency)} · p95 ${ms(m.p95Latency)} · p99 ${ms(m.p99Latency)}` : '- (no requests)'],
        ['tokens', m.totalTokens],
        ['cost', `${usd(m.estimatedCost)}${m.unpricedRequests ? ` (+${m.unpricedRequests} unpriced requests)` : ''}`],
      ]),
    )
    const models = Object.entries(m.modelBreakdown).sort((a, b) => b[1] - a[1])
    if (models.length) {
      this.log('')
      this.log(table(models, [
        { header: 'MODEL', get: ([name]) => name },
        { header: 'REQUESTS', get: ([, n]) => n, align: 'right' },
        { header: 'SHARE', get: ([, n]) => percent(m.totalRequests ? n / m.totalRequests : 0), align: 'right' },
      ]))
    }
    const pick = {
      requests: (d: ProjectMetrics['dailySummary'][number]) => [d.requests, String(d.requests)] as const,
      errors: (d: ProjectMetrics['dailySummary'][number]) => [d.errors, String(d.errors)] as const,
      latency: (d: ProjectMetrics['dailySummary'][number]) => [d.avgLatency, d.requests ? ms(d.avgLatency) : '-'] as const,
      tokens: (d: ProjectMetrics['dailySummary'][number]) => [d.tokens, String(d.tokens)] as const,
      cost: (d: ProjectMetrics['dailySummary'][number]) => [d.cost, usd(d.cost)] as const,
    }[this.flags.series as 'requests']
    this.log(`\n${c.bold(`${this.flags.series} per day (UTC)`)}`)
    this.log(barChart(m.dailySummary.map((d) => {
      const [value, note] = pick(d)
      return { label: d.date, value, note }
    })))
    return m
  }
}
