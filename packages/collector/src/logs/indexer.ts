import type { Sql } from '../db/connect.js'
import type { Logger } from '../logger.js'

/** Arbitrary constant: the advisory lock that lets one instance at a time run the indexer. */
const INDEXER_LOCK = 7_400_010

export interface SearchIndexerOptions {
  /**
   * How far behind the present the indexer stays (a margin: the watermark also stays behind the
   * start of every collector transaction still open, see step()).
   */
  lagMs?: number
  /** Time spent indexing per run; on the embedded database every query waits meanwhile. */
  budgetMs?: number
  intervalMs?: number
}

/**
 * Copies the text of stored requests into the trigram-indexed llm_request_text, window by
 * window of created_at, and advances the watermark in the same transaction. Windows adapt to
 * hold about `TARGET_ROWS` rows, since a burst can put a million rows in a minute.
 */
export class SearchIndexer {
  private timer?: NodeJS.Timeout
  private running?: Promise<number>
  private windowMs = 5_000
  private static readonly TARGET_ROWS = 2_000
  readonly lagMs: number
  private readonly budgetMs: number
  private readonly intervalMs: number

  constructor(
    private readonly sql: Sql,
    private readonly logger: Logger,
    options: SearchIndexerOptions = {},
  ) {
    this.lagMs = options.lagMs ?? 60_000
    this.budgetMs = options.budgetMs ?? 500
    this.intervalMs = options.intervalMs ?? 2_000
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.running) return
      this.runOnce().catch((err: unknown) => this.logger.warn({ err }, 'search indexer run failed'))
    }, this.intervalMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.running?.catch(() => undefined)
  }

  /**
   * Indexes what is due, within the time budget. Returns the number of rows indexed.
   * `lagMs` overrides the lag for this run (tests and tools that know no ingest is in flight).
   */
  async runOnce(lagMs = this.lagMs): Promise<number> {
    while (this.running) await this.running.catch(() => undefined)
    this.running = this.run(lagMs).finally(() => (this.running = undefined))
    return this.running
  }

  private async run(lagMs: number): Promise<number> {
    const deadline = Date.now() + this.budgetMs
    let total = 0
    for (;;) {
      const step = await this.step(lagMs)
      if (step === null) return total
      total += step
      if (Date.now() >= deadline) return total
    }
  }

  /** One window; null when nothing was due or another instance holds the lock. */
  private async step(lagMs: number): Promise<number | null> {
    return this.sql.begin(async (tx) => {
      const [lock] = await tx<{ ok: boolean }[]>`select pg_try_advisory_xact_lock(${INDEXER_LOCK}) as ok`
      if (!lock!.ok) return null
      // rows are stamped with their transaction's start (created_at default now()) but show only
      // at its commit: the watermark never passes the start of a collector transaction still
      // open, whatever the lag, or rows it commits later would fall behind it for good
      const [state] = await tx<{ from: Date; due: Date }[]>`
        select indexed_before as "from",
          least(
            clock_timestamp() - ${lagMs} * interval '1 millisecond',
            (select min(xact_start) from pg_stat_activity
              where datname = current_database() and pid <> pg_backend_pid() and xact_start is not null
                -- the collector's sessions (a DATABASE_URL cannot rename them: db/connect.ts)
                and application_name = 'llmguard-collector')
          ) as due
        from search_index_state for update`
      const from = state!.from
      const due = state!.due
      if (from >= due) return null
      const to = new Date(Math.min(due.getTime(), from.getTime() + this.windowMs))
      const inserted = await tx`
        insert into llm_request_text (project_id, id, body)
        select project_id, id, lower(prompt || E'\\n' || response) from llm_requests
        where created_at >= ${from} and created_at < ${to}
        on conflict do nothing`
      await tx`update search_index_state set indexed_before = ${to}`
      const rows = inserted.count
      // aim the next window at TARGET_ROWS rows, within 10 ms … 10 min
      const span = to.getTime() - from.getTime()
      const next = rows > 0 ? (span * SearchIndexer.TARGET_ROWS) / rows : span * 4
      this.windowMs = Math.min(600_000, Math.max(10, next))
      return rows
    }) as Promise<number | null>
  }
}
