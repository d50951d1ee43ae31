import {
  adminUserParamsSchema,
  billingInfoSchema,
  billingUrlSchema,
  checkoutBodySchema,
  invoiceListQuerySchema,
  invoicePageSchema,
  portalBodySchema,
  setPlanBodySchema,
} from '@llmguard/shared'
import { userIdOf } from '../auth/guard.js'
import { defineRoute, type RouteDef } from '../http/route.js'
import type { BillingService } from './service.js'

export interface BillingRouteDeps {
  billing: BillingService
  /** CORS_ORIGINS: where the web app lives, for the default return URLs. */
  corsOrigins: string[]
  tls: boolean
}

/**
 * Where Stripe sends the user back when the client names no URL: the calling app's origin when
 * CORS allows it, else the first configured origin, else this collector's own address.
 */
export function appOrigin(deps: Pick<BillingRouteDeps, 'corsOrigins' | 'tls'>, headers: Record<string, string>): string {
  const origin = headers.origin
  if (origin && (deps.corsOrigins.includes(origin) || deps.corsOrigins.includes('*')) && /^https?:\/\/[^/\s]+$/.test(origin)) return origin
  const configured = deps.corsOrigins.find((o) => o !== '*')
  if (configured) return configured
  const host = /^[A-Za-z0-9.\-:[\]]+$/.test(headers.host ?? '') ? headers.host : 'localhost'
  return `${deps.tls ? 'https' : 'http'}://${host}`
}

export function billingRoutes(deps: BillingRouteDeps): RouteDef[] {
  const { billing } = deps
  return [
    defineRoute({
      method: 'GET',
      path: '/v1/billing',
      auth: 'user',
      summary: "The caller's plan, this month's usage across all their projects, limit and next billing date",
      tags: ['billing'],
      responses: { 200: billingInfoSchema },
      handler: ({ principal }) => billing.info(userIdOf(principal)),
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/billing/checkout',
      auth: 'user',
      summary: 'A Stripe Checkout URL to subscribe to pro (503 BILLING_NOT_CONFIGURED without STRIPE_SECRET_KEY/STRIPE_PRICE_PRO)',
      tags: ['billing'],
      body: checkoutBodySchema,
      responses: { 200: billingUrlSchema },
      handler: ({ principal, body, headers }) => {
        const origin = appOrigin(deps, headers)
        return billing.checkout(userIdOf(principal), {
          plan: body.plan,
          successUrl: body.successUrl ?? `${origin}/billing?checkout=success`,
          cancelUrl: body.cancelUrl ?? `${origin}/billing?checkout=cancelled`,
        })
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/billing/portal',
      auth: 'user',
      summary: "A Stripe billing-portal URL for the caller's subscription, payment methods and invoices",
      tags: ['billing'],
      body: portalBodySchema,
      responses: { 200: billingUrlSchema },
      handler: ({ principal, body, headers }) => billing.portal(userIdOf(principal), body?.returnUrl ?? `${appOrigin(deps, headers)}/billing`),
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/billing/invoices',
      auth: 'user',
      summary: "The caller's Stripe invoices, newest first (cursor pages: pass nextCursor as cursor)",
      tags: ['billing'],
      query: invoiceListQuerySchema,
      responses: { 200: invoicePageSchema },
      handler: ({ principal, query }) => billing.invoices(userIdOf(principal), query),
    }),
    defineRoute({
      method: 'PUT',
      path: '/v1/admin/users/:id/plan',
      auth: 'admin',
      summary: "Set a user's plan; enterprise takes a custom monthlyLimit (administrators only)",
      tags: ['billing', 'admin'],
      params: adminUserParamsSchema,
      body: setPlanBodySchema,
      responses: { 200: billingInfoSchema },
      handler: ({ params, body }) => billing.setPlan(params.id, body.plan, body.monthlyLimit),
    }),
  ]
}
