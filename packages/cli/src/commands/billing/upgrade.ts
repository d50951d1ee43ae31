import { Flags } from '@oclif/core'
import type { BillingUrl } from '@llmguard/shared'
import { BaseCommand } from '../../base.js'
import { c } from '../../lib/output.js'

export default class BillingUpgrade extends BaseCommand<typeof BillingUpgrade> {
  static override summary = 'Get a Stripe Checkout link to upgrade to pro'
  static override examples = ['<%= config.bin %> billing upgrade', '<%= config.bin %> billing upgrade --success-url https://app.example.com/thanks --json']
  static override flags = {
    'success-url': Flags.string({ description: 'where Stripe sends you after paying' }),
    'cancel-url': Flags.string({ description: 'where Stripe sends you when you cancel' }),
  }

  async run(): Promise<BillingUrl> {
    const body = { plan: 'pro', successUrl: this.flags['success-url'], cancelUrl: this.flags['cancel-url'] }
    const { url } = await this.session.post<BillingUrl>('/v1/billing/checkout', body)
    this.log(`Open this link to upgrade to pro:\n\n  ${c.bold(url)}\n`)
    return { url }
  }
}
