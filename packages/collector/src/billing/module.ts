import { PLAN_MONTHLY_LIMITS } from '@llmguard/shared'
import type { Config } from '../config.js'
import type { Sql } from '../db/connect.js'
import type { RouteDef } from '../http/route.js'
import { createStripeBilling } from '../integrations/stripe.js'
import type { Logger } from '../logger.js'
import { stripeWebhookRoutes } from '../webhooks/stripe.js'
import { UsageMeter } from './meter.js'
import { billingRoutes } from './routes.js'
import { createBillingService, type BillingService } from './service.js'

export interface Billing {
  meter: UsageMeter
  service: BillingService
  routes: RouteDef[]
  /**
   * The clock of usage months, webhook ages and billing dates. Replaceable so tests can roll a
   * month over without waiting for one.
   */
  clock: { now(): Date }
}

/** The billing domain wired up: usage meter, plans, Stripe checkout/portal/invoices, Stripe webhook. */
export function createBilling(deps: { sql: Sql; logger: Logger; config: Pick<Config, 'stripe' | 'planLimits' | 'corsOrigins' | 'tls' | 'database'> }): Billing {
  const { sql, logger, config } = deps
  const clock = { now: () => new Date() }
  const now = () => clock.now()
  const stripe = config.stripe.secretKey ? createStripeBilling({ secretKey: config.stripe.secretKey, apiBase: config.stripe.apiBase }) : undefined
  const meter = new UsageMeter({ sql, logger, limits: config.planLimits ? PLAN_MONTHLY_LIMITS : undefined, now })
  const service = createBillingService({ sql, logger, stripe, pricePro: config.stripe.pricePro, limitsEnforced: config.planLimits, embedded: !config.database.url, now })
  return {
    meter,
    service,
    clock,
    routes: [
      ...billingRoutes({ billing: service, corsOrigins: config.corsOrigins, tls: Boolean(config.tls) }),
      ...stripeWebhookRoutes({ billing: service, secret: config.stripe.webhookSecret, now }),
    ],
  }
}
