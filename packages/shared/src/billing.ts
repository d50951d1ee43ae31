import { z } from 'zod'
import { idSchema, queryIntOr } from './common.js'

/** Plans (seed `BillingPlan`). Enterprise limits are set per user by an administrator. */
export const BILLING_PLANS = ['free', 'pro', 'enterprise'] as const
export const billingPlanSchema = z.enum(BILLING_PLANS)
export type BillingPlan = z.infer<typeof billingPlanSchema>

/** Records per calendar month (UTC) across all of a user's projects. */
export const PLAN_MONTHLY_LIMITS = { free: 10_000, pro: 1_000_000 } as const

/** An enterprise limit (and any stored usage count) stays well inside a JSON-safe integer. */
export const MAX_MONTHLY_LIMIT = 1_000_000_000_000

/**
 * The account's billing status: Stripe's subscription statuses, `active` for an account
 * without a subscription.
 */
export const BILLING_STATUSES = ['active', 'trialing', 'past_due', 'canceled', 'unpaid', 'incomplete', 'incomplete_expired', 'paused'] as const
export const billingStatusSchema = z.enum(BILLING_STATUSES)
export type BillingStatus = z.infer<typeof billingStatusSchema>

/** Seed `BillingInfo`, plus the status, whether limits apply, and when usage resets. */
export const billingInfoSchema = z
  .object({
    userId: z.uuid(),
    plan: billingPlanSchema,
    status: billingStatusSchema,
    /** Records stored this UTC month across the user's projects (batches in flight included). */
    usage: z.number().int(),
    monthlyLimit: z.number().int(),
    /** False when the collector runs with PLAN_LIMITS=off (usage is still counted). */
    limitsEnforced: z.boolean(),
    /** Start of the current usage month (UTC). */
    periodStart: z.string(),
    /** When usage starts again from zero: the first instant of the next UTC month. */
    usageResetsAt: z.string(),
    /** The subscription's current period end; without a subscription, when usage resets. */
    nextBillingDate: z.string(),
    stripeCustomerId: z.string().nullable(),
    stripeSubscriptionId: z.string().nullable(),
    /** True when the subscription ends at the close of the current period. */
    cancelAtPeriodEnd: z.boolean(),
  })
  .meta({ id: 'BillingInfo' })
export type BillingInfo = z.infer<typeof billingInfoSchema>

const returnUrlSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .max(2048)

/** Only pro is sold through Checkout: free needs none, enterprise is set by an administrator. */
export const checkoutBodySchema = z.strictObject({
  plan: z.enum(['pro'], { error: 'must be "pro" (enterprise is arranged with us and set by an administrator)' }),
  successUrl: returnUrlSchema.optional(),
  cancelUrl: returnUrlSchema.optional(),
})
export type CheckoutBody = z.input<typeof checkoutBodySchema>

export const portalBodySchema = z.strictObject({ returnUrl: returnUrlSchema.optional() }).optional()
export type PortalBody = z.input<typeof portalBodySchema>

export const billingUrlSchema = z.object({ url: z.string() }).meta({ id: 'BillingRedirect' })
export type BillingUrl = z.infer<typeof billingUrlSchema>

export const invoiceSchema = z
  .object({
    id: z.string(),
    number: z.string().nullable(),
    status: z.string().nullable(),
    /** Amounts in the currency's smallest unit (cents), as Stripe reports them. */
    amountDue: z.number().int(),
    amountPaid: z.number().int(),
    currency: z.string(),
    createdAt: z.string(),
    periodStart: z.string(),
    periodEnd: z.string(),
    hostedInvoiceUrl: z.string().nullable(),
    invoicePdf: z.string().nullable(),
  })
  .meta({ id: 'Invoice' })
export type Invoice = z.infer<typeof invoiceSchema>

export const invoiceListQuerySchema = z.object({
  limit: queryIntOr(1, 100, 20),
  /** `nextCursor` of the previous page. */
  cursor: z
    .string()
    .regex(/^in_[A-Za-z0-9]{1,250}$/, 'must be the nextCursor of a previous page')
    .optional(),
})
export const invoicePageSchema = z
  .object({ items: z.array(invoiceSchema), hasMore: z.boolean(), nextCursor: z.string().nullable() })
  .meta({ id: 'InvoicePage' })
export type InvoicePage = z.infer<typeof invoicePageSchema>

export const adminUserParamsSchema = z.object({ id: idSchema })
/** `PUT /v1/admin/users/:id/plan`: `monthlyLimit` is required for enterprise and refused otherwise. */
export const setPlanBodySchema = z
  .strictObject({
    plan: billingPlanSchema,
    monthlyLimit: z.number().int().min(0).max(MAX_MONTHLY_LIMIT).optional(),
  })
  .refine((b) => (b.plan === 'enterprise') === (b.monthlyLimit !== undefined), {
    message: 'monthlyLimit is required for enterprise and only allowed for it',
    path: ['monthlyLimit'],
  })
export type SetPlanBody = z.input<typeof setPlanBodySchema>

/** What `POST /v1/webhooks/stripe` answers (Stripe only looks at the status). */
export const stripeWebhookResultSchema = z
  .object({
    duplicate: z.boolean(),
    /** False for event types that change nothing here, or events about an unknown customer. */
    applied: z.boolean().optional(),
  })
  .meta({ id: 'StripeWebhookResult' })
export type StripeWebhookResult = z.infer<typeof stripeWebhookResultSchema>
