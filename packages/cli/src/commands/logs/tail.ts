import { Flags } from '@oclif/core'
import { ApiError, type LogResult, type Page } from '@llmguard/shared'
import { BaseCommand, projectFlag } from '../../base.js'
import { logFilterFlags, logLine, toLogQuery } from '../../lib/logs.js'
import { safe, terminalSafe, width } from '../../lib/output.js'

/**
 * Each poll reads what the collector stored since the newest arrival seen, less this margin: a
 * batch's rows carry the start of the transaction that stored them (createdAt) and show once it
 * commits, normally well within a second. A batch that took longer than this to store is missed.
 */
const OVERLAP_MS = 10_000
const PAGE = 100
/** New records one poll prints at most: past this the tail is behind and reads on without the margin. */
const MAX_NEW = 2_000
/** Pages one poll reads at most (the margin re-read included). */
const MAX_PAGES = 50
const MIN_MODEL_WIDTH = 12
const MAX_MODEL_WIDTH = 28

export default class LogsTail extends BaseCommand<typeof LogsTail> {
  static override summary = 'Follow new requests as they are logged (Ctrl-C to stop)'
  static override description =
    'Follows records as the collector stores them, also those an SDK ships late (after an outage), whatever their call timestamp. With --json, prints one JSON object per line (NDJSON) as records arrive.'
  static override examples = ['<%= config.bin %> logs tail', '<%= config.bin %> logs tail --status error --min-risk 50 --json']
  static override ndjson = true
  static override flags = {
    project: projectFlag,
    search: logFilterFlags.search,
    model: logFilterFlags.model,
    'min-risk': logFilterFlags['min-risk'],
    'max-risk': logFilterFlags['max-risk'],
    status: logFilterFlags.status,
    user: logFilterFlags.user,
    'policy-violation': logFilterFlags['policy-violation'],
    lines: Flags.integer({ description: 'latest arrivals to show first', min: 0, max: 100, default: 10 }),
    interval: Flags.integer({ description: 'seconds between polls', min: 1, max: 3600, default: 2 }),
    count: Flags.integer({ description: 'stop after this many new records (default: follow until Ctrl-C)', min: 1 }),
  }

  async run(): Promise<void> {
    const id = this.projectId(this.flags.project)
    const base = toLogQuery(this.flags)
    // id → createdAt (ms) of what was printed or counted as seen
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
      // by arrival (createdAt, the collector's clock), not by timestamp: a record an SDK shipped
      // late, after an outage, is new here though its call was long ago
      const fetch = async (query: { sortOrder: 'asc' | 'desc'; limit: number; page?: number; createdFrom?: number }) => {
        const { createdFrom, ...rest } = query
        const q = { ...base, sortBy: 'createdAt', ...rest, ...(createdFrom === undefined ? {} : { createdFrom: new Date(createdFrom).toISOString() }) }
        return (await this.session.get<Page<LogResult>>(`/v1/projects/${id}/logs`, q as Record<string, string | number>)).items
      }
      // the model column keeps one width as lines arrive: wide enough for the usual names, and
      // widened (up to a cap) by a longer one, never narrowed again
      let modelWidth = MIN_MODEL_WIDTH
      const widen = (r: LogResult) => (modelWidth = Math.min(MAX_MODEL_WIDTH, Math.max(modelWidth, width(safe(r.model)))))
      const print = (r: LogResult) => {
        if (this.jsonEnabled()) return void process.stdout.write(`${JSON.stringify(r)}\n`)
        this.log(logLine(r, widen(r)))
      }
      // the newest arrival seen; undefined while the project has none that match
      let newest: number | undefined
      const note = (r: LogResult) => {
        const t = Date.parse(r.createdAt)
        seen.set(r.id, t)
        newest = Math.max(newest ?? t, t)
      }
      /**
       * Reads what arrived from `from` on, oldest first, handing each record to `each` (true: it
       * was new). Returns true when it stopped at a limit with more to read.
       */
      const readFrom = async (from: number | undefined, each: (r: LogResult) => boolean): Promise<boolean> => {
        let fresh = 0
        for (let page = 1; page <= MAX_PAGES; page++) {
          const items = await fetch({ sortOrder: 'asc', limit: PAGE, page, createdFrom: from })
          for (const r of items) {
            if (stopped) return false
            if (each(r)) fresh++
          }
          if (items.length < PAGE) return false
          if (fresh >= MAX_NEW) return true
        }
        return true
      }
      const recent = await fetch({ sortOrder: 'desc', limit: Math.max(1, this.flags.lines) })
      for (const r of recent) note(r)
      // where following starts: the newest arrival there was. Its batch shares its createdAt and
      // counts as seen; nothing older is read again, so nothing from before the start shows
      const floor = newest
      if (floor !== undefined) {
        await readFrom(floor, (r) => {
          if (Date.parse(r.createdAt) <= floor) note(r)
          return false
        })
      }
      const shown = recent.slice(0, this.flags.lines)
      // the first lines come together: they share the widest of their names
      for (const r of shown) widen(r)
      for (const r of [...shown].reverse()) print(r)
      let printed = 0
      let behind = false
      let outage = false
      while (!stopped) {
        await new Promise<void>((resolve) => {
          wake = resolve
          timer = setTimeout(resolve, this.flags.interval * 1000)
        })
        if (stopped) break
        const from = newest === undefined ? undefined : behind ? newest : Math.max(floor ?? -Infinity, newest - OVERLAP_MS)
        try {
          behind = await readFrom(from, (r) => {
            if (seen.has(r.id)) return false
            note(r)
            print(r)
            if (this.flags.count && ++printed >= this.flags.count) stopped = true
            return true
          })
        } catch (err) {
          // a collector restarting (an upgrade) or briefly unreachable: wait it out, as tail -f
          // waits out a file being rotated; what arrives meanwhile shows once it answers again
          if (!passing(err)) throw err
          if (!outage) notice(`(${(err as Error).message}; still trying every ${this.flags.interval} s)`)
          outage = true
          continue
        }
        if (outage) notice('(the collector answers again)')
        outage = false
        if (behind) notice(`(more than ${MAX_NEW.toLocaleString('en')} new records a poll: catching up)`)
        // forget what no later poll can return
        if (newest !== undefined) for (const [rid, t] of seen) if (t < newest - 2 * OVERLAP_MS) seen.delete(rid)
      }
    } finally {
      clearTimeout(timer)
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
    }
  }
}

/** A note on stderr, also with --json (stdout stays one record per line). */
const notice = (message: string) => void process.stderr.write(`${terminalSafe(message)}\n`)

/** A failure a following tail outlives: no answer, or the collector not ready or failing (5xx). */
const passing = (err: unknown) => err instanceof ApiError && (err.code === 'UNREACHABLE' || err.status >= 500)
