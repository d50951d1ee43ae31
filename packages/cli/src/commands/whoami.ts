import { userSchema, type User } from '@llmguard/shared'
import { BaseCommand } from '../base.js'
import { keyValues, relativeTime } from '../lib/output.js'

export interface WhoamiResult {
  collector: string
  user: User
  defaultProject: string | null
}

export default class Whoami extends BaseCommand<typeof Whoami> {
  static override summary = 'Show the signed-in user'
  static override examples = ['<%= config.bin %> whoami', '<%= config.bin %> whoami --json']

  async run(): Promise<WhoamiResult> {
    const user = await this.session.get<User>('/v1/auth/me', undefined, userSchema)
    const defaultProject = this.cliConfig.projectId ?? null
    this.log(
      keyValues([
        ['email', user.email],
        ['name', user.name],
        ['role', user.role],
        ['user id', user.id],
        ['since', relativeTime(user.createdAt)],
        ['collector', this.session.collector],
        ['project', defaultProject],
      ]),
    )
    return { collector: this.session.collector, user, defaultProject }
  }
}
