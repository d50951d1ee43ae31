import { Flags } from '@oclif/core'
import { BaseCommand } from '../../base.js'
import { CliError, usage } from '../../lib/errors.js'

/** Flags named after the collector's environment variables (docs/self-hosting.md lists them all). */
const ENV_FLAGS = {
  port: 'PORT',
  host: 'HOST',
  'database-url': 'DATABASE_URL',
  'data-dir': 'LLMGUARD_DATA_DIR',
  'log-level': 'LOG_LEVEL',
  'cors-origins': 'CORS_ORIGINS',
  'trust-proxy': 'TRUST_PROXY',
  'tls-cert-file': 'TLS_CERT_FILE',
  'tls-key-file': 'TLS_KEY_FILE',
  'allow-signup': 'ALLOW_SIGNUP',
  'signup-limit': 'SIGNUP_LIMIT',
  'plan-limits': 'PLAN_LIMITS',
  'rca-model': 'RCA_MODEL',
  'rca-daily-limit': 'RCA_DAILY_LIMIT',
} as const

type CollectorModule = typeof import('@llmguard/collector')

/** Loaded only here: the collector (and its database engine) is an optional dependency of the CLI. */
export async function loadCollector(load: () => Promise<unknown> = () => import('@llmguard/collector')): Promise<CollectorModule> {
  try {
    return (await load()) as CollectorModule
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new CliError(
        'COLLECTOR_NOT_INSTALLED',
        'the collector is not installed: `npm install -g @llmguard/collector` (or in this repository: `pnpm build`), then run this again',
      )
    }
    throw err
  }
}

export interface StartedCollector {
  url: string
  embedded: boolean
  dataDir: string | null
}

export default class CollectorStart extends BaseCommand<typeof CollectorStart> {
  static override summary = 'Run the collector in this terminal (embedded database unless --database-url)'
  static override description =
    'Every flag has the environment variable of the same meaning (e.g. --port = PORT); other variables (OPENAI_API_KEY, STRIPE_*, secrets) are read from the environment as usual. Stops on Ctrl-C.'
  static override ndjson = true
  static override examples = [
    '<%= config.bin %> collector start',
    '<%= config.bin %> collector start --port 8080 --data-dir ./data',
    '<%= config.bin %> collector start --database-url postgres://llmguard@localhost/llmguard',
  ]
  static override flags = {
    port: Flags.integer({ description: 'PORT (default 3000; 0 picks a free one)', min: 0, max: 65535 }),
    host: Flags.string({ description: 'HOST (default 0.0.0.0)' }),
    'database-url': Flags.string({ description: 'DATABASE_URL: Postgres (default: the embedded database)' }),
    'data-dir': Flags.string({ description: 'LLMGUARD_DATA_DIR: where the embedded database lives (default ./.llmguard)' }),
    'log-level': Flags.string({ description: 'LOG_LEVEL', options: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] }),
    'cors-origins': Flags.string({ description: 'CORS_ORIGINS: comma-separated origins' }),
    'trust-proxy': Flags.string({ description: 'TRUST_PROXY: true, false or a number of proxy hops' }),
    'tls-cert-file': Flags.string({ description: 'TLS_CERT_FILE' }),
    'tls-key-file': Flags.string({ description: 'TLS_KEY_FILE' }),
    'allow-signup': Flags.string({ description: 'ALLOW_SIGNUP', options: ['true', 'false'] }),
    'signup-limit': Flags.integer({ description: 'SIGNUP_LIMIT: sign-ups tried per client address per 15 minutes (default 20)', min: 1 }),
    'plan-limits': Flags.string({ description: 'PLAN_LIMITS', options: ['on', 'off'] }),
    'rca-model': Flags.string({ description: 'RCA_MODEL' }),
    'rca-daily-limit': Flags.integer({ description: "RCA_DAILY_LIMIT: OpenAI analyses per user per 24 hours (default 100; 0: never)", min: 0 }),
  }

  async run(): Promise<StartedCollector | undefined> {
    const env: Record<string, string | undefined> = { ...process.env }
    for (const [flag, name] of Object.entries(ENV_FLAGS)) {
      const value = (this.flags as Record<string, unknown>)[flag]
      if (value !== undefined) env[name] = String(value)
    }
    const mod = await loadCollector()
    let config
    try {
      config = mod.loadConfig(env)
    } catch (err) {
      if (err instanceof mod.ConfigError) throw usage(err.message.replace(/\n\s*/g, ' '))
      throw err
    }
    // a signal during start-up (an embedded database's first start takes seconds) is kept and
    // acted on once the collector is up, so its database closes cleanly and the lock goes
    let stopRequested: () => void = () => undefined
    let signalled = false
    const onSignal = () => {
      signalled = true
      stopRequested()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    const logger = mod.createLogger(config.logLevel)
    let collector
    try {
      collector = await mod.startCollector(config, { logger })
    } catch (err) {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      if (err instanceof mod.DataDirLockedError) throw new CliError('DATA_DIR_LOCKED', err.message, 75)
      throw err
    }
    const running = collector
    const uninstall = mod.installCrashHandlers(logger, () => running.stop())
    const started: StartedCollector = { url: collector.url, embedded: collector.embedded, dataDir: collector.embedded ? config.dataDir : null }
    this.log(`collector ${mod.VERSION} listening on ${collector.url} (${collector.embedded ? `embedded database in ${config.dataDir}` : 'Postgres'}); Ctrl-C to stop`)
    if (this.jsonEnabled()) process.stdout.write(`${JSON.stringify({ ...started, status: 'running' })}\n`)
    await new Promise<void>((resolve) => {
      stopRequested = resolve
      if (signalled) resolve()
    })
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    this.log('stopping…')
    await collector.stop()
    uninstall()
    // --json already printed the running line; a second document would break NDJSON readers
    return this.jsonEnabled() ? undefined : started
  }
}
