import { BaseCommand } from '../base.js'

export interface VersionResult {
  name: string
  version: string
  node: string
  platform: string
  arch: string
}

export default class Version extends BaseCommand<typeof Version> {
  static override summary = 'Show the CLI version (also: --version, -v)'
  static override examples = ['<%= config.bin %> version', '<%= config.bin %> version --json']

  async run(): Promise<VersionResult> {
    // the line --version prints (oclif's user agent): package/version platform-arch node-version
    this.log(this.config.userAgent)
    return { name: this.config.name, version: this.config.version, node: process.version, platform: this.config.platform, arch: this.config.arch }
  }
}
