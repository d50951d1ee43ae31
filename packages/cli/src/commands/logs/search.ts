import { Flags } from '@oclif/core'
import type { LogResult, Page } from '@llmguard/shared'
import { BaseCommand, projectFlag } from '../../base.js'
import { logFilterFlags, logTable, toLogQuery } from '../../lib/logs.js'
import { c, emptyPage } from '../../lib/output.js'

export default class LogsSearch extends BaseCommand<typeof LogsSearch> {
  static override summary = 'Search logged LLM requests'
  static override examples = [
    '<%= config.bin %> logs search --search "refund" --since 24h',
    '<%= config.bin %> logs search --project 3f0c… --min-risk 50 --status error --sort-by riskScore --json',
  ]
  static override flags = {
    project: projectFlag,
    ...logFilterFlags,
    'sort-by': Flags.string({ description: 'sort field', options: ['timestamp', 'latency', 'riskScore', 'createdAt'], default: 'timestamp' }),
    order: Flags.string({ description: 'sort order', options: ['asc', 'desc'], default: 'desc', aliases: ['sort-order'] }),
    page: Flags.integer({ description: 'page number (1-based)', min: 1, default: 1 }),
    limit: Flags.integer({ char: 'n', description: 'records per page (1–100)', min: 1, max: 100, default: 20 }),
  }

  async run(): Promise<Page<LogResult>> {
    const id = this.projectId(this.flags.project)
    const query = toLogQuery(this.flags)
    const page = await this.session.get<Page<LogResult>>(`/v1/projects/${id}/logs`, query as Record<string, string | number>)
    if (!page.items.length) this.log(emptyPage(page, 'no matching records'))
    else {
      this.log(logTable(page.items))
      const first = (page.page - 1) * page.limit + 1
      this.log(c.dim(`\n${first}–${first + page.items.length - 1} of ${page.total}${page.totalCapped ? '+' : ''}`))
    }
    return page
  }
}
