import { Flags } from '@oclif/core'
import type { LogResult, Page } from '@llmguard/shared'
import { BaseCommand, projectFlag } from '../../base.js'
import { logFilterFlags, logLine, toLogQuery } from '../../lib/logs.js'

/** Records may arrive with a call-start timestamp a little in the past: look back this far on each poll. */
const LOOKBACK_MS = 5 * 60_000
const MIN_MODEL_WIDTH = 12
const MAX_MODEL_WIDTH = 28

export default class LogsTail extends BaseCommand<typeof LogsTail> {
  static override summary = 'Follow new requests as they are logged (Ctrl-C to stop)'
  static override description = 'With --json, prints one JSON object per line (NDJSON) as records arrive.'
  static override examples = ['<%= config.bin %> logs tail', '<%= config.bin %> logs tail --status error --min-risk 50 --json']
  static override flags = {
    project: projectFlag,
    search: logFilterFlags.search,
    model: logFilterFlags.model,
    'min-risk': logFilterFlags['min-risk'],
    'max-risk': logFilterFlags['max-risk'],
    status: logFilterFlags.status,
    user: logFilterFlags.user,
    lines: Flags.integer({ description: 'recent records to show first', min: 0, max: 100, default: 10 }),
    interval: Flags.integer({ description: 'seconds between polls', min: 1, max: 3600, default: 2 }),
    count: Flags.integer({ description: 'stop after this many new records (default: follow until Ctrl-C)', min: 1 }),
  }

  async run(): Promise<void> {
    const id = this.projectId(this.flags.project)
    const base = toLogQuery(this.flags)
    const seen = new Map<string, number>()
    let stopped = false
    let wake: (() => void) | undefined
    let timer: NodeJS.Timeout | undefined
    const stop = () => {
      stopped = true
      clearTimeout(timer)
      wake?.()
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    try {
      const fetch = async (limit: number, since?: number) => {
        const query = { ...base, sortBy: 'timestamp', sortOrder: 'desc', limit, ...(since ? { startDate: new Date(since).toISOString() } : {}) }
        return (await this.session.get<Page<LogResult>>(`/v1/projects/${id}/logs`, query as Record<string, string | number>)).items
      }
      // the model column keeps one width as lines arrive: wide enough for the usual names, and
      // widened (up to a cap) by a longer one, never narrowed again
      let modelWidth = MIN_MODEL_WIDTH
      const widen = (r: LogResult) => (modelWidth = Math.min(MAX_MODEL_WIDTH, Math.max(modelWidth, r.model.length)))
      const print = (r: LogResult) => {
        if (this.jsonEnabled()) return void process.stdout.write(`${JSON.stringify(r)}\n`)
        this.log(logLine(r, widen(r)))
      }
      // everything the first polls could return counts as seen; only the last --lines are shown
      const window = await fetch(100, Date.now() - LOOKBACK_MS)
      const recent = this.flags.lines ? await fetch(this.flags.lines) : []
      const initial = [...window, ...recent]
      for (const r of initial) seen.set(r.id, Date.parse(r.timestamp))
      // the first lines come together: they share the widest of their names
      for (const r of recent) widen(r)
      for (const r of [...recent].reverse()) print(r)
      let printed = 0
      let newest = Math.max(Date.now(), ...initial.map((r) => Date.parse(r.timestamp)))
      while (!stopped) {
        await new Promise<void>((resolve) => {
          wake = resolve
          timer = setTimeout(resolve, this.flags.interval * 1000)
        })
        if (stopped) break
        const since = Math.min(newest, Date.now()) - LOOKBACK_MS
        const fresh = (await fetch(100, since)).filter((r) => !seen.has(r.id)).reverse()
        for (const r of fresh) {
          const t = Date.parse(r.timestamp)
          seen.set(r.id, t)
          newest = Math.max(newest, t)
          print(r)
          if (this.flags.count && ++printed >= this.flags.count) stopped = true
          if (stopped) break
        }
        // forget what is older than any future poll can return
        for (const [rid, t] of seen) if (t < since - LOOKBACK_MS) seen.delete(rid)
      }
    } finally {
      clearTimeout(timer)
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
    }
  }
}
