import cron, { type ScheduledTask } from 'node-cron'
import type { Logger } from '../logger.js'

export interface JobDef {
  name: string
  /** A cron expression (UTC). */
  schedule: string
  run(now: Date): Promise<unknown>
}

/**
 * node-cron schedules for the collector's jobs. Every instance schedules every job; each job
 * elects its one runner per period itself (see leader.ts). Timers are unref'd so they never
 * keep the process alive, and stop() destroys the tasks (hyper-express' shutdown does not).
 */
export class JobScheduler {
  private readonly tasks: ScheduledTask[] = []

  constructor(private readonly logger: Logger) {}

  start(jobs: JobDef[]): void {
    for (const job of jobs) {
      const task = cron.schedule(
        job.schedule,
        async (context) => {
          try {
            await job.run(context.date)
          } catch (err) {
            this.logger.error({ err, job: job.name }, 'job failed')
          }
        },
        { name: `llmguard:${job.name}:${Math.random().toString(36).slice(2)}`, timezone: 'UTC', noOverlap: true, unref: true },
      )
      this.tasks.push(task)
    }
  }

  get names(): string[] {
    return this.tasks.map((t) => t.name ?? t.id)
  }

  async stop(): Promise<void> {
    const tasks = this.tasks.splice(0)
    for (const task of tasks) await task.destroy()
  }
}
