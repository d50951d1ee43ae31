import { accessSync, constants, statSync } from 'node:fs'
import { dirname, isAbsolute, relative, resolve } from 'node:path'
import { Flags } from '@oclif/core'
import { ApiError, healthSchema, type AuthResult, type CreatedApiKey, type Page, type Project } from '@llmguard/shared'
import { BaseCommand } from '../base.js'
import { signupAfterLoginError } from '../lib/auth.js'
import { updateConfig } from '../lib/config.js'
import { upsertEnv } from '../lib/dotenv.js'
import { CliError, usage } from '../lib/errors.js'
import { checkId } from '../lib/ids.js'
import { c, safe, withSpinner } from '../lib/output.js'
import { confirm, interactive, valueOrPrompt } from '../lib/prompt.js'
import { expectShape } from '../lib/session.js'

export interface InitResult {
  collector: string
  user: { id: string; email: string; created: boolean }
  project: { id: string; name: string; created: boolean }
  /** `key` itself only with --no-env (shown only now); otherwise it is in the .env file. */
  key: { id: string; name: string | null; last4: string; key?: string }
  /** The .env written (absolute path), or null with --no-env. */
  envFile: string | null
}

export default class Init extends BaseCommand<typeof Init> {
  static override summary = 'Set up LLMGuard: sign up or log in, create a project and an API key, write .env'
  static override description =
    'Asks for whatever the flags do not give (on a terminal), so `llmguard init --collector URL --email E --password P --signup` runs unattended. ' +
    'LLMGUARD_API_KEY and LLMGUARD_ENDPOINT are set in the .env file; its other lines are kept.'
  static override examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init --collector http://localhost:3000 --email you@example.com --signup --project-name my-app',
    'LLMGUARD_PASSWORD=… <%= config.bin %> init --email you@example.com --no-signup --project 3f0c…',
  ]
  static override flags = {
    email: Flags.string({ description: 'account email' }),
    password: Flags.string({ description: 'password (prefer LLMGUARD_PASSWORD)', env: 'LLMGUARD_PASSWORD' }),
    signup: Flags.boolean({
      description: 'create a new account (--no-signup: log in to an existing one; neither: log in, or sign up when the account does not exist)',
      allowNo: true,
    }),
    project: Flags.string({ char: 'p', description: 'use this existing project instead of creating one' }),
    // no oclif default: a default would look like a given flag, and a given flag is not asked for
    'project-name': Flags.string({ description: 'the project to use by name: yours of that name, else a new one (asked on a terminal; default: default)' }),
    'key-name': Flags.string({ description: 'name of the API key to create', default: 'llmguard init' }),
    // not `--env-file`: Node.js reads that flag anywhere in its arguments and exits when the file
    // does not exist yet, before the CLI starts
    dotenv: Flags.string({ description: 'the .env file to write (created when missing)', default: '.env' }),
    env: Flags.boolean({ description: 'write the .env file (--no-env: only print what to set)', default: true, allowNo: true }),
  }

  async run(): Promise<InitResult> {
    // checked before anything is created: the new API key is shown only once, and an account
    // signed up before a bad --project is refused would make running init again a CONFLICT
    const envFile = this.flags.env ? writableEnvFile(resolve(this.flags.dotenv)) : null
    const projectId = this.flags.project === undefined ? undefined : checkId('project', this.flags.project, '--project')
    const collector = await this.chooseCollector()
    const session = this.session
    // a collector, not whatever else answers on that port, before an account is made there
    await withSpinner(`checking ${collector}`, async () => expectShape(collector, healthSchema, await session.api.get('/healthz')))
    const email = await valueOrPrompt(this.flags.email, 'email', 'Email')
    let signup = this.flags.signup
    if (signup === undefined && interactive()) signup = await confirm('Create a new account?', 'signup')
    const password = await valueOrPrompt(this.flags.password, 'password', signup ? 'Choose a password (8+ characters)' : 'Password', { hidden: true })
    const { auth, created } = await this.authenticate(signup, email, password)
    this.log(`${c.green('✓')} ${created ? 'signed up' : 'logged in'} as ${c.bold(auth.user.email)}`)

    let project: Project
    let projectCreated = false
    if (projectId) {
      project = await session.get<Project>(`/v1/projects/${projectId}`)
    } else {
      const name = await valueOrPrompt(this.flags['project-name'], 'project-name', 'Project name', { default: 'default' })
      // running init again (another checkout, a lost .env) reuses the project of that name
      // rather than adding one more "default" each time: the newest, when there are several
      const mine = await session.get<Page<Project>>('/v1/projects', { limit: 100 })
      const existing = mine.items.find((p) => p.name === name)
      if (existing) project = existing
      else {
        project = await session.post<Project>('/v1/projects', { name })
        projectCreated = true
      }
    }
    this.log(`${c.green('✓')} project ${c.bold(safe(project.name))} (${project.id})${projectCreated ? ' created' : ' (yours already)'}`)
    updateConfig((cfg) => ({ ...cfg, projectId: project.id }), this.configFile)

    const key = await session.post<CreatedApiKey>(`/v1/projects/${project.id}/keys`, { name: this.flags['key-name'] })
    this.log(`${c.green('✓')} API key …${key.last4} created`)

    const values = { LLMGUARD_API_KEY: key.key, LLMGUARD_ENDPOINT: collector }
    const printValues = () =>
      this.log(`\nSet these in your app's environment (the key is shown only now):\n${Object.entries(values).map(([k, v]) => `  ${k}=${v}`).join('\n')}`)
    if (envFile) {
      let written: ReturnType<typeof upsertEnv>
      try {
        written = upsertEnv(envFile, values)
      } catch (err) {
        // checked writable at the start, yet it failed: the key must not be lost with it
        printValues()
        throw new CliError('ENV_WRITE_FAILED', `could not write ${envFile}: ${(err as Error).message}; set LLMGUARD_API_KEY and LLMGUARD_ENDPOINT yourself`, 1, values)
      }
      this.log(`${c.green('✓')} ${envFile}: ${[...written.added.map((n) => `${n} added`), ...written.updated.map((n) => `${n} updated`)].join(', ')}`)
    } else {
      printValues()
    }
    // the SDK reads process.env only: say how the file gets there
    const load = envFile ? ` (it reads LLMGUARD_API_KEY and LLMGUARD_ENDPOINT from the environment: e.g. \`node --env-file=${relativeOrAbsolute(envFile)} app.js\`)` : ''
    this.log(`\nNext: wrap your OpenAI client with @llmguard/sdk${load}, then \`${this.config.bin} logs tail\` to watch requests arrive.`)
    return {
      collector,
      user: { id: auth.user.id, email: auth.user.email, created },
      project: { id: project.id, name: project.name, created: projectCreated },
      key: { id: key.id, name: key.name, last4: key.last4, ...(envFile ? {} : { key: key.key }) },
      envFile,
    }
  }

  /** `--collector`/`LLMGUARD_ENDPOINT`, else asked on a terminal, else the default. */
  private async chooseCollector(): Promise<string> {
    if (!this.flags.collector && interactive()) {
      this.flags.collector = await valueOrPrompt(undefined, 'collector', 'Collector URL', { default: this.collectorUrl })
    }
    return this.collectorUrl
  }

  /** Unattended without --signup/--no-signup: log in, and sign up when no such account exists. */
  private async authenticate(signup: boolean | undefined, email: string, password: string): Promise<{ auth: AuthResult; created: boolean }> {
    if (signup === true) return { auth: await this.session.authenticate('register', email, password), created: true }
    try {
      return { auth: await this.session.authenticate('login', email, password), created: false }
    } catch (err) {
      if (signup === false || !(err instanceof ApiError) || err.code !== 'INVALID_CREDENTIALS') throw err
    }
    try {
      return { auth: await this.session.authenticate('register', email, password), created: true }
    } catch (err) {
      throw signupAfterLoginError(err, email)
    }
  }
}

/** The .env path if it can be written (the file, or a new file in its directory); a usage error otherwise. */
function writableEnvFile(path: string): string {
  const refused = (why: string) => usage(`--dotenv ${path}: ${why} (or --no-env to print the values instead)`)
  let target = path
  try {
    if (statSync(path).isDirectory()) throw refused('is a directory')
  } catch (err) {
    if (err instanceof CliError) throw err
    // no such file: it is created in its directory
    target = dirname(path)
    let dir
    try {
      dir = statSync(target)
    } catch {
      throw refused(`the directory ${target} does not exist`)
    }
    if (!dir.isDirectory()) throw refused(`${target} is not a directory`)
  }
  try {
    accessSync(target, constants.W_OK)
  } catch {
    throw refused(`${target === path ? 'the file' : `the directory ${target}`} is not writable`)
  }
  return path
}

/** A path as short as it can be said from the current directory. */
function relativeOrAbsolute(path: string): string {
  const rel = relative(process.cwd(), path)
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path
}
