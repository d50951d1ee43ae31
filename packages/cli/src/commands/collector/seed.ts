import { randomBytes } from 'node:crypto'
import { Flags } from '@oclif/core'
import { ApiError, type AuthResult, type CreatedApiKey, type Page, type Project } from '@llmguard/shared'
import { BaseCommand } from '../../base.js'
import { signupAfterLoginError } from '../../lib/auth.js'
import { readConfig, updateConfig } from '../../lib/config.js'
import { CliError, usage } from '../../lib/errors.js'
import { c, keyValues } from '../../lib/output.js'
import { demoRecords } from '../../lib/seed.js'
import { tokensToConfig } from '../../lib/session.js'

export interface SeedResult {
  collector: string
  email: string
  projectId: string
  apiKey: string
  /** Only when this run created the account with a generated password (shown once). */
  password?: string
  accepted: number
  duplicates: number
  rejected: number
}

const BATCH = 500

export default class CollectorSeed extends BaseCommand<typeof CollectorSeed> {
  static override summary = 'Create a demo account, project, API key and a week of realistic records'
  static override description =
    'Works over HTTP against any collector. Creates the demo account with a generated password (printed once) or, with --password, signs in to it; an existing demo account is used through your session when you are logged in as it. The project of --project-name is reused when the account has one (seeding again adds records, not projects). When you are not logged in, or with --use, the CLI then uses that account and project.'
  static override examples = ['<%= config.bin %> collector seed', '<%= config.bin %> collector seed --records 5000 --days 14 --use --json']
  static override flags = {
    email: Flags.string({ description: 'demo account email', default: 'demo@llmguard.local' }),
    // no fixed default: the first account of a fresh install becomes its admin, and a default
    // password is a public one
    password: Flags.string({ description: 'demo account password (default: a generated one, printed once)', env: 'LLMGUARD_DEMO_PASSWORD' }),
    'project-name': Flags.string({ description: "demo project name (the account's project of that name, else a new one)", default: 'demo' }),
    records: Flags.integer({ description: 'records to create', min: 1, max: 1_000_000, default: 2_000 }),
    days: Flags.integer({ description: 'spread over this many days back from now', min: 1, max: 365, default: 7 }),
    'random-seed': Flags.integer({ description: 'same seed, same records (ids aside)', default: 42 }),
    use: Flags.boolean({ description: 'switch the CLI to the demo account and project even if you are logged in' }),
  }

  async run(): Promise<SeedResult> {
    const api = this.session.api
    const { email } = this.flags
    const signedIn = await this.signIn(email, this.flags.password)
    const token = signedIn.token
    const project = await this.demoProject(token)
    const key = await api.post<CreatedApiKey>(`/v1/projects/${project.id}/keys`, { name: 'seed' }, { token })

    const records = demoRecords(this.flags.records, this.flags.days, this.flags['random-seed'])
    const totals = { accepted: 0, duplicates: 0, rejected: 0 }
    const progress = !this.jsonEnabled() && Boolean(process.stderr.isTTY)
    for (let i = 0; i < records.length; i += BATCH) {
      const result = await api.post<{ accepted: number; duplicates: number; rejected: unknown[] }>(
        '/v1/llm/requests/batch',
        { records: records.slice(i, i + BATCH) },
        { token: key.key },
      )
      totals.accepted += result.accepted
      totals.duplicates += result.duplicates
      totals.rejected += result.rejected.length
      if (progress) {
        const done = Math.min(records.length, i + BATCH)
        const bar = '█'.repeat(Math.round((done / records.length) * 30)).padEnd(30, '░')
        process.stderr.write(`\r${bar} ${done}/${records.length} records`)
      }
    }
    if (progress) process.stderr.write('\n')

    const loggedIn = Boolean(readConfig(this.configFile).refreshToken)
    if (!loggedIn || this.flags.use) {
      const auth = signedIn.auth
      updateConfig(
        (cfg) => (auth ? { ...cfg, ...tokensToConfig(auth.tokens), collector: api.baseUrl, email: auth.user.email, userId: auth.user.id, projectId: project.id } : { ...cfg, projectId: project.id }),
        this.configFile,
      )
    }
    this.log(
      keyValues([
        ['account', signedIn.generated ? `${email} / ${signedIn.generated} (generated: keep it, it is not shown again)` : email],
        ['project', `${project.name} (${project.id})`],
        ['API key', key.key],
        ['records', `${totals.accepted} stored${totals.rejected ? `, ${totals.rejected} rejected` : ''} over ${this.flags.days} days`],
      ]),
    )
    this.log(
      !loggedIn || this.flags.use
        ? `\nThe CLI now uses this account: try ${c.bold('llmguard metrics')} or ${c.bold('llmguard logs search --min-risk 20')}.`
        : `\nYou stay logged in as before; add --use to switch to the demo account.`,
    )
    return { collector: api.baseUrl, email, projectId: project.id, apiKey: key.key, ...(signedIn.generated ? { password: signedIn.generated } : {}), ...totals }
  }

  /** The account's project of the demo name (the newest, as `init` picks), else a new one: seeding again adds records, not projects. */
  private async demoProject(token: string): Promise<Project> {
    const name = this.flags['project-name']
    const mine = await this.session.api.get<Page<Project>>('/v1/projects', { query: { limit: 100 }, token })
    return mine.items.find((p) => p.name === name) ?? (await this.session.api.post<Project>('/v1/projects', { name }, { token }))
  }

  /**
   * The demo account's access token: with a password, log in (or create the account with it);
   * without one, the CLI's own session when it is that account's, else a new account with a
   * generated password. `auth` is set when this run signed in (its tokens may become the CLI's).
   */
  private async signIn(email: string, password: string | undefined): Promise<{ token: string; auth?: AuthResult; generated?: string }> {
    const api = this.session.api
    if (password !== undefined) {
      try {
        const auth = await api.post<AuthResult>('/v1/auth/login', { email, password })
        return { token: auth.tokens.accessToken, auth }
      } catch (err) {
        if (!(err instanceof ApiError) || err.code !== 'INVALID_CREDENTIALS') throw err
      }
      try {
        const auth = await api.post<AuthResult>('/v1/auth/register', { email, password, name: 'Demo' })
        return { token: auth.tokens.accessToken, auth }
      } catch (err) {
        throw signupAfterLoginError(err, email)
      }
    }
    const cfg = readConfig(this.configFile)
    if (cfg.refreshToken && cfg.email?.toLowerCase() === email.toLowerCase()) {
      try {
        return { token: await this.session.currentAccessToken() }
      } catch (err) {
        // that session is another collector's: the account here is another one
        if (!(err instanceof CliError) || err.code !== 'NOT_LOGGED_IN') throw err
      }
    }
    const generated = randomBytes(12).toString('base64url')
    try {
      const auth = await api.post<AuthResult>('/v1/auth/register', { email, password: generated, name: 'Demo' })
      return { token: auth.tokens.accessToken, auth, generated }
    } catch (err) {
      if (err instanceof ApiError && err.code === 'CONFLICT') {
        throw usage(`the demo account ${email} already exists: give its password with --password (or LLMGUARD_DEMO_PASSWORD), or another --email`)
      }
      throw err
    }
  }
}
