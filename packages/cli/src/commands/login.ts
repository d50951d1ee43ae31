import { Flags } from '@oclif/core'
import { BaseCommand } from '../base.js'
import { c } from '../lib/output.js'
import { valueOrPrompt } from '../lib/prompt.js'

export interface LoginResult {
  collector: string
  user: { id: string; email: string; role: string }
}

export default class Login extends BaseCommand<typeof Login> {
  static override summary = 'Log in to a collector and remember the session'
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
    return { collector: this.session.collector, user: { id: user.id, email: user.email, role: user.role } }
  }
}
