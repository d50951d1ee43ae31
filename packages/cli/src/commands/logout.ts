import { ApiClient, ApiError } from '@llmguard/shared'
import { BaseCommand } from '../base.js'
import { updateConfig } from '../lib/config.js'

export interface LogoutResult {
  loggedOut: boolean
  /** True only when the session's own collector revoked it (the local session is forgotten anyway). */
  revoked: boolean
}

export default class Logout extends BaseCommand<typeof Logout> {
  static override summary = 'Revoke the session on the collector and forget it locally'
  static override description =
    'The session is revoked at the collector it belongs to (the one you logged in to), whatever --collector or LLMGUARD_ENDPOINT name: the refresh token goes nowhere else.'
  static override examples = ['<%= config.bin %> logout']

  async run(): Promise<LogoutResult> {
    const { refreshToken, collector: stored } = this.cliConfig
    if (!refreshToken) {
      this.log('not logged in')
      return { loggedOut: false, revoked: false }
    }
    // the refresh token opens the account: it goes to the collector that issued it, or nowhere.
    // Another one named (an app's LLMGUARD_ENDPOINT, say http://collector:3000 inside Docker)
    // must neither receive it nor keep the user from logging out
    // (compared as given: it is never used, so it need not even be a valid URL)
    const named = this.flags.collector?.trim().replace(/\/+$/, '')
    if (stored && named && named !== stored.replace(/\/+$/, '')) this.log(`the session belongs to ${stored}: logging out there, not at ${named}`)
    const api = new ApiClient({ baseUrl: stored ?? this.collectorUrl, userAgent: 'llmguard-cli', timeoutMs: 15_000 })
    let revoked = true
    try {
      await api.post('/v1/auth/logout', { refreshToken })
    } catch (err) {
      if (!(err instanceof ApiError)) throw err
      revoked = false
      this.warn(`the collector was not told (${err.message}); the local session is forgotten anyway`)
    } finally {
      await api.close()
    }
    updateConfig(({ accessToken: _a, refreshToken: _r, accessTokenExpiresAt: _e, ...rest }) => rest, this.configFile)
    this.log('logged out')
    return { loggedOut: true, revoked }
  }
}
