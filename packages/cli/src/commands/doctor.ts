import { existsSync, statSync } from 'node:fs'
import { ApiClient, ApiError, readinessSchema, userSchema, type Readiness, type User } from '@llmguard/shared'
import { BaseCommand } from '../base.js'
import type { CliConfig } from '../lib/config.js'
import { CliError } from '../lib/errors.js'
import { expectShape } from '../lib/session.js'
import { c } from '../lib/output.js'
import { knownOutboxes, readOutbox, resolveOutbox, outboxFlags } from '../lib/outbox.js'

export interface Check {
  name: string
  status: 'ok' | 'warn' | 'fail'
  detail: string
}

export interface DoctorResult {
  ok: boolean
  checks: Check[]
}

export default class Doctor extends BaseCommand<typeof Doctor> {
  static override summary = 'Check the config, the collector (reachable, ready, version), the session and the outbox backlog'
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json']
  static override flags = { ...outboxFlags }

  private configError: CliError | undefined

  /** A config that cannot be read is the config check failing: the other checks run without it. */
  protected override get cliConfig(): CliConfig {
    try {
      return super.cliConfig
    } catch (err) {
      if (!(err instanceof CliError) || err.code !== 'CONFIG_INVALID') throw err
      this.configError = err
      return {}
    }
  }

  async run(): Promise<DoctorResult> {
    // read first, so that the config check knows whether it can be read
    void this.cliConfig
    const checks: Check[] = []
    const add = (name: string, status: Check['status'], detail: string) => checks.push({ name, status, detail })

    const file = this.configFile
    if (!existsSync(file)) add('config', 'warn', `${file} does not exist yet (run \`llmguard init\`)`)
    else if (this.configError) add('config', 'fail', this.configError.message)
    else {
      const mode = statSync(file).mode & 0o777
      add('config', mode & 0o077 ? 'fail' : 'ok', `${file} (mode ${mode.toString(8)}${mode & 0o077 ? ': readable by others, run chmod 600' : ''})`)
    }

    const url = this.collectorUrl
    const probe = new ApiClient({ baseUrl: url, timeoutMs: 5_000, userAgent: 'llmguard-cli' })
    let reachable = false
    try {
      const body = await probe.get('/readyz').catch((err: unknown) => {
        // 503 still means reachable: the body says what is not ready
        if (err instanceof ApiError && err.status === 503 && err.details?.body) return err.details.body
        throw err
      })
      // another server answering on the port is not a collector that is ready
      const ready = expectShape<Readiness>(url, readinessSchema, body)
      reachable = true
      add('collector', ready.status === 'ready' ? 'ok' : 'fail', `${url} ${ready.status}, version ${ready.version} (database ${ready.database}, migrations ${ready.migrations})`)
    } catch (err) {
      add('collector', 'fail', err instanceof ApiError ? err.message : String(err))
    } finally {
      await probe.close()
    }

    const cfg = this.cliConfig
    if (!cfg.refreshToken) add('session', 'warn', 'not logged in (run `llmguard login`)')
    else if (reachable) {
      try {
        const me = await this.session.get<User>('/v1/auth/me', undefined, userSchema)
        add('session', 'ok', `logged in as ${me.email}`)
        if (cfg.projectId) {
          await this.session.get(`/v1/projects/${cfg.projectId}`)
          add('project', 'ok', `default project ${cfg.projectId}`)
        } else add('project', 'warn', 'no default project (`llmguard projects use ID`)')
      } catch (err) {
        add('session', 'fail', err instanceof Error ? err.message : String(err))
      }
    }

    const one = resolveOutbox(this.flags, () => this.collectorUrl)
    const paths = one ? (existsSync(one) ? [one] : []) : knownOutboxes()
    if (one && !paths.length) add('outbox', 'warn', `no outbox at ${one}`)
    else if (!paths.length) add('outbox', 'ok', 'no local outbox files')
    for (const path of paths) {
      try {
        const o = readOutbox(path, 0)
        add('outbox', o.parked ? 'warn' : o.queued > 1000 ? 'warn' : 'ok', `${path}: ${o.queued} queued, ${o.parked} parked, ${o.droppedTotal} dropped`)
      } catch (err) {
        const message = (err as Error).message
        add('outbox', 'fail', message.includes(path) ? message : `${path}: ${message}`)
      }
    }

    const mark = { ok: c.green('✓'), warn: c.yellow('!'), fail: c.red('✗') }
    for (const ch of checks) this.log(`${mark[ch.status]} ${ch.name.padEnd(9)} ${ch.detail}`)
    const ok = !checks.some((ch) => ch.status === 'fail')
    if (!ok && !this.jsonEnabled()) throw new CliError('DOCTOR_FAILED', `${checks.filter((ch) => ch.status === 'fail').length} check(s) failed`)
    if (!ok) process.exitCode = 1
    return { ok, checks }
  }
}
