import { ApiError } from '@llmguard/shared'
import { BaseCommand } from '../base.js'
import { updateConfig } from '../lib/config.js'

export interface LogoutResult {
  loggedOut: boolean
  /** False when the collector could not be told (the local session is forgotten anyway). */
  revoked: boolean
}

export default class Logout extends BaseCommand<typeof Logout> {
  static override summary = 'Revoke the session on the collector and forget it locally'
  static override examples = ['<%= config.bin %> logout']

  async run(): Promise<LogoutResult> {
    const { refreshToken } = this.cliConfig
    if (!refreshToken) {
      this.log('not logged in')
      return { loggedOut: false, revoked: false }
    }
    let revoked = true
    try {
      await this.session.api.post('/v1/auth/logout', { refreshToken })
    } catch (err) {
      if (!(err instanceof ApiError)) throw err
      revoked = false
      this.warn(`the collector was not told (${err.message}); the local session is forgotten anyway`)
    }
    updateConfig(({ accessToken: _a, refreshToken: _r, accessTokenExpiresAt: _e, ...rest }) => rest, this.configFile)
    this.log('logged out')
    return { loggedOut: true, revoked }
  }
}
