import { format } from 'node:util'
import { Command, Flags, type Interfaces } from '@oclif/core'
import { configPath, DEFAULT_COLLECTOR, readConfig, type CliConfig } from './lib/config.js'
import { CliError, toFailure, usage } from './lib/errors.js'
import { checkId } from './lib/ids.js'
import { terminalSafe } from './lib/output.js'
import { Session } from './lib/session.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/**
 * Every command: `--json` prints the typed result of `run()`, `--collector` picks the
 * collector, errors become one line (the collector's envelope code and message) and a non-zero
 * exit code, with the stack only under `--debug`.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true
  static override baseFlags = {
    collector: Flags.string({
      description: `collector URL (default: the one you logged in to, else ${DEFAULT_COLLECTOR})`,
      env: 'LLMGUARD_ENDPOINT',
      helpGroup: 'GLOBAL',
    }),
    debug: Flags.boolean({ description: 'print stack traces of errors', helpGroup: 'GLOBAL' }),
  }

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>
  /** Every positional argument (for commands with `strict = false`). */
  protected rest: string[] = []
  private sessionInstance: Session | undefined

  public override async init(): Promise<void> {
    await super.init()
    const { args, flags, argv } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
    this.rest = argv as string[]
  }

  protected get configFile(): string {
    return configPath()
  }

  protected get cliConfig(): CliConfig {
    return readConfig(this.configFile)
  }

  /** `--collector` / `LLMGUARD_ENDPOINT`, else the one logged in to, else localhost:3000. */
  protected get collectorUrl(): string {
    const raw = ((this.flags as { collector?: string }).collector || this.cliConfig.collector || DEFAULT_COLLECTOR).trim()
    let url: URL
    try {
      url = new URL(raw)
    } catch {
      throw usage(`--collector: not a URL: "${raw}" (e.g. http://localhost:3000)`)
    }
    // never echoed: the URL itself would show the password
    if (url.username || url.password) throw usage('--collector: the URL holds a user name or password; leave them out (sign in with `llmguard login`)')
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usage(`--collector: expected an http(s) URL, got "${raw}"`)
    // the API's paths are appended to it: a query or fragment would swallow them
    if (url.search || url.hash) throw usage(`--collector: expected the collector's address without a query or fragment, got "${raw}"`)
    return `${url.origin}${url.pathname}`.replace(/\/+$/, '')
  }

  /** The signed-in user's API client, created on first use. */
  protected get session(): Session {
    this.sessionInstance ??= new Session(this.collectorUrl, this.configFile)
    return this.sessionInstance
  }

  /**
   * `--project`, else the default project from `init` / `projects use`. Only for the flag: a
   * project id given as an argument is that id (`checkId`), never the default in its place.
   */
  protected projectId(flag: string | undefined): string {
    const id = flag || this.cliConfig.projectId
    if (!id) {
      // not logged in says more than no project: `projects list` would fail the same way
      this.session.requireLogin()
      throw usage('no project: pass --project ID (see `llmguard projects list`) or set a default with `llmguard projects use ID`')
    }
    return checkId('project', id, '--project')
  }

  // straight to the streams (oclif goes through console.log): one path for output, easy to capture;
  // terminalSafe: whatever of the collector's data a message quotes, no escape sequence of it runs
  public override log(message = '', ...args: unknown[]): void {
    if (!this.jsonEnabled()) process.stdout.write(`${terminalSafe(format(message, ...args))}\n`)
  }

  public override warn(input: string | Error): string | Error {
    if (!this.jsonEnabled()) process.stderr.write(`Warning: ${terminalSafe(input instanceof Error ? input.message : input)}\n`)
    return input
  }

  /** Commands whose --json output is one JSON object per line (NDJSON): their errors too. */
  static ndjson = false

  protected override logJson(json: unknown): void {
    process.stdout.write(`${(this.ctor as typeof BaseCommand).ndjson ? JSON.stringify(json) : JSON.stringify(json, null, 2)}\n`)
  }

  protected override async catch(err: Interfaces.CommandError): Promise<void> {
    // `llmguard --help`-style exits pass through
    if ((err as { oclif?: { exit?: number } }).oclif?.exit === 0) throw err
    const failure = toFailure(err)
    if (this.jsonEnabled()) {
      this.logJson({ error: { code: failure.code, message: failure.message, status: failure.status, details: failure.details } })
    } else {
      process.stderr.write(`Error: ${terminalSafe(failure.message)}${failure.code !== 'USAGE' && failure.code !== 'INTERNAL' ? ` [${failure.code}]` : ''}\n`)
      if (process.argv.includes('--debug') || this.argv.includes('--debug')) process.stderr.write(`${(err as Error).stack ?? ''}\n`)
    }
    this.exit(failure.exitCode)
  }

  protected override async finally(err: Error | undefined): Promise<void> {
    await this.sessionInstance?.close().catch(() => undefined)
    return super.finally(err)
  }
}

export const projectFlag = Flags.string({
  char: 'p',
  description: 'project id (default: the project `llmguard init` or `projects use` chose)',
  env: 'LLMGUARD_PROJECT',
})

export const pageFlags = {
  page: Flags.integer({ description: 'page number (1-based)', min: 1, default: 1 }),
  limit: Flags.integer({ description: 'items per page (1–100)', min: 1, max: 100, default: 50 }),
}

export { CliError }
