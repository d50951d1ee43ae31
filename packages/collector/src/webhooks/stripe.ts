import { stripeWebhookResultSchema } from '@llmguard/shared'
import type { BillingService } from '../billing/service.js'
import { AppError } from '../http/errors.js'
import { defineRoute, type RouteDef } from '../http/route.js'
import { StripeSignatureError, verifyStripeEvent } from '../integrations/stripe.js'

/**
 * A bad or stale Stripe signature: 400, not the 401 of our other webhooks, because Stripe's
 * dashboard and CLI treat a 400 as "the endpoint refused the signature".
 */
class StripeSignatureInvalid extends AppError {
  override readonly status = 400
  constructor(message: string) {
    super('WEBHOOK_SIGNATURE_INVALID', message)
  }
}

export function stripeWebhookRoutes(deps: { billing: BillingService; secret?: string; now(): Date }): RouteDef[] {
  return [
    defineRoute({
      method: 'POST',
      path: '/v1/webhooks/stripe',
      auth: 'none',
      rawBody: true,
      summary: 'Stripe events (verified with STRIPE_WEBHOOK_SECRET on the raw body; each event id applied once)',
      tags: ['webhooks', 'billing'],
      responses: { 200: stripeWebhookResultSchema },
      handler: async ({ headers, rawBody }) => {
        if (!deps.secret) throw new AppError('WEBHOOK_NOT_CONFIGURED', 'Stripe webhooks are not configured: set STRIPE_WEBHOOK_SECRET')
        let event
        try {
          event = verifyStripeEvent(rawBody, headers['stripe-signature'], deps.secret, deps.now().getTime())
        } catch (err) {
          if (err instanceof StripeSignatureError) throw new StripeSignatureInvalid(err.message)
          throw err
        }
        return deps.billing.handleEvent(event)
      },
    }),
  ]
}
