import type { BillingInfo } from '@llmguard/shared'
import { BaseCommand } from '../../base.js'
import { barChart, keyValues, percent, relativeTime } from '../../lib/output.js'

export default class BillingStatus extends BaseCommand<typeof BillingStatus> {
  static override summary = "Your plan, this month's usage against its limit, and the next billing date"
  static override examples = ['<%= config.bin %> billing status', '<%= config.bin %> billing status --json']

  async run(): Promise<BillingInfo> {
    const b = await this.session.get<BillingInfo>('/v1/billing')
    this.log(
      keyValues([
        ['plan', `${b.plan} (${b.status}${b.cancelAtPeriodEnd ? ', cancels at period end' : ''})`],
        ['usage', `${b.usage.toLocaleString('en-US')} of ${b.monthlyLimit.toLocaleString('en-US')} requests (${percent(b.monthlyLimit ? b.usage / b.monthlyLimit : 0)})${b.limitsEnforced ? '' : ', limits off'}`],
        ['resets', `${b.usageResetsAt} (${relativeTime(b.usageResetsAt)})`],
        // the API always gives a date (the month's end without a subscription), but only a
        // subscription is billed: a free or administrator-set plan has no bill to announce
        ['next bill', b.stripeSubscriptionId ? `${b.nextBillingDate} (${relativeTime(b.nextBillingDate)})` : '- (no subscription)'],
      ]),
    )
    this.log(barChart([{ label: 'used', value: Math.min(b.usage, b.monthlyLimit), note: percent(b.monthlyLimit ? b.usage / b.monthlyLimit : 0) }, { label: 'limit', value: b.monthlyLimit, note: ' ' }], 40))
    return b
  }
}
