import { Flags } from '@oclif/core'
import { ApiError, type Page, type Project } from '@llmguard/shared'
import { BaseCommand } from '../base.js'
import { updateConfig } from '../lib/config.js'
import { c, safe } from '../lib/output.js'
import { valueOrPrompt } from '../lib/prompt.js'

export interface LoginResult {
  collector: string
  user: { id: string; email: string; role: string }
  /** The default project for commands run without --project, when there is one. */
  project?: { id: string; name: string }
}

export default class Login extends BaseCommand<typeof Login> {
  static override summary = 'Log in to a collector and remember the session'
  static override description =
    'An account with exactly one project gets it as the default project (as `projects use` would) when no default is set, or the one set belongs to another account.'
  static override examples = [
    '<%= config.bin %> login --collector http://localhost:3000 --email you@example.com',
    'LLMGUARD_PASSWORD=… <%= config.bin %> login --email you@example.com --json',
  ]
  static override flags = {
    email: Flags.string({ description: 'account email' }),
    password: Flags.string({ description: 'password (prefer LLMGUARD_PASSWORD; flags end up in shell history)', env: 'LLMGUARD_PASSWORD' }),
  }

  async run(): Promise<LoginResult> {
    const email = await valueOrPrompt(this.flags.email, 'email', 'Email')
    const password = await valueOrPrompt(this.flags.password, 'password', 'Password', { hidden: true })
    const { user } = await this.session.authenticate('login', email, password)
    this.log(`${c.green('✓')} logged in to ${this.session.collector} as ${c.bold(user.email)}`)
    const project = await this.defaultProject()
    return { collector: this.session.collector, user: { id: user.id, email: user.email, role: user.role }, ...(project ? { project } : {}) }
  }

  /**
   * The default project after logging in: the one kept (same account), or the account's only
   * project, so commands work without --project right away (as after `pnpm seed`). With several
   * the choice stays the user's.
   */
  private async defaultProject(): Promise<{ id: string; name: string } | undefined> {
    const kept = this.session.config.projectId
    if (kept) {
      try {
        const p = await this.session.get<Project>(`/v1/projects/${kept}`)
        return { id: p.id, name: p.name }
      } catch (err) {
        // deleted since: it stays, and the commands that use it say so
        if (err instanceof ApiError) return undefined
        throw err
      }
    }
    const page = await this.session.get<Page<Project>>('/v1/projects', { limit: 2 })
    if (page.items.length !== 1) {
      if (page.items.length > 1) this.log(`choose a default project with \`${this.config.bin} projects use ID\` (see \`${this.config.bin} projects list\`)`)
      return undefined
    }
    const only = page.items[0]!
    updateConfig((cfg) => ({ ...cfg, projectId: only.id }), this.configFile)
    this.log(`default project: ${safe(only.name)} (${only.id})`)
    return { id: only.id, name: only.name }
  }
}
