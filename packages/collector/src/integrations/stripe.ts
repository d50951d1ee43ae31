import type Stripe from 'stripe'
import type { Invoice, InvoicePage } from '@llmguard/shared'
import { lazyLibrary } from './lazy.js'

/**
 * The only module that loads `stripe`. It turns Stripe's objects into the plain shapes the
 * billing domain works with, so nothing else depends on the library or its API version.
 */

/** Loaded when a Stripe setting is first used (~140 ms of start-up otherwise). */
const stripeLib = lazyLibrary<typeof Stripe>('stripe')

/** Age past which a signed webhook is refused as a replay (Stripe's own default). */
export const STRIPE_TOLERANCE_SECONDS = 300
/** Checkout and portal are interactive: fail fast rather than hold the user's request. */
const STRIPE_TIMEOUT_MS = 15_000

export interface StripeConfig {
  secretKey: string
  /** STRIPE_API_BASE: another host for the API (a loopback fake in tests, a proxy for self-hosters). */
  apiBase?: string
}

/** A Stripe call refused for reasons of configuration (bad key, unknown price): not retryable. */
export class StripeConfigError extends Error {
  override readonly name = 'StripeConfigError'
}

/**
 * Stripe has no such object: the customer a user is linked to (deleted in the dashboard), or
 * the invoice a page cursor names. The caller's state or input, not this install's setup.
 */
export class StripeMissingError extends Error {
  override readonly name = 'StripeMissingError'
  constructor(
    readonly what: 'customer' | 'cursor',
    message: string,
  ) {
    super(message)
  }
}

/** What the billing domain asks of Stripe. */
export interface StripeBilling {
  /** `replacing`: the linked customer Stripe no longer has (a new key, so not its replay). */
  createCustomer(input: { userId: string; email: string; replacing?: string }): Promise<string>
  createCheckoutSession(input: {
    customerId: string
    userId: string
    priceId: string
    plan: string
    successUrl: string
    cancelUrl: string
  }): Promise<string>
  createPortalSession(input: { customerId: string; returnUrl: string }): Promise<string>
  /**
   * Whether Stripe says this customer was deleted. False when this key cannot see it at all
   * (a key of another account, or of test mode for a live customer): not the customer's doing.
   */
  customerDeleted(customerId: string): Promise<boolean>
  listInvoices(input: { customerId: string; limit: number; startingAfter?: string }): Promise<InvoicePage>
}

/** host/port/protocol of STRIPE_API_BASE, as the client's options take them. */
export function apiBaseOptions(apiBase: string | undefined): { host?: string; port?: number; protocol?: 'http' | 'https' } {
  if (!apiBase) return {}
  const url = new URL(apiBase)
  const protocol = url.protocol === 'http:' ? 'http' : 'https'
  return { host: url.hostname, port: url.port ? Number(url.port) : protocol === 'http' ? 80 : 443, protocol }
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString()
const idOf = (value: string | { id: string } | null | undefined) => (value == null ? null : typeof value === 'string' ? value : value.id)

function toInvoice(i: Stripe.Invoice): Invoice {
  return {
    id: i.id,
    number: i.number,
    status: i.status,
    amountDue: i.amount_due,
    amountPaid: i.amount_paid,
    currency: i.currency,
    createdAt: iso(i.created),
    periodStart: iso(i.period_start),
    periodEnd: iso(i.period_end),
    hostedInvoiceUrl: i.hosted_invoice_url ?? null,
    invoicePdf: i.invoice_pdf ?? null,
  }
}

/**
 * Stripe errors that a retry will not fix: a missing customer or cursor object becomes
 * StripeMissingError, the rest (our key, our price, our parameters) StripeConfigError; others
 * (network, Stripe's outages) pass through.
 */
async function call<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (err) {
    const { errors } = stripeLib()
    if (err instanceof errors.StripeInvalidRequestError && err.code === 'resource_missing') {
      if (err.param === 'customer' || err.param === 'id') throw new StripeMissingError('customer', err.message)
      if (err.param === 'starting_after') throw new StripeMissingError('cursor', err.message)
    }
    if (err instanceof errors.StripeAuthenticationError || err instanceof errors.StripePermissionError || err instanceof errors.StripeInvalidRequestError) {
      throw new StripeConfigError(`Stripe refused the request: ${err.message}`)
    }
    throw err
  }
}

/** Builds the Stripe client once from configuration. */
export function createStripeBilling(config: StripeConfig): StripeBilling {
  const StripeClient = stripeLib()
  const stripe = new StripeClient(config.secretKey, {
    ...apiBaseOptions(config.apiBase),
    timeout: STRIPE_TIMEOUT_MS,
    maxNetworkRetries: 1,
    telemetry: false,
    appInfo: { name: 'LLMGuard collector' },
  })
  return {
    async createCustomer({ userId, email, replacing }) {
      // the key makes two concurrent first checkouts of one user share one customer
      const key = replacing ? `llmguard-customer-${userId}-after-${replacing}` : `llmguard-customer-${userId}`
      const customer = await call(() => stripe.customers.create({ email, metadata: { userId } }, { idempotencyKey: key }))
      return customer.id
    },
    async createCheckoutSession(input) {
      const session = await call(() =>
        stripe.checkout.sessions.create({
          mode: 'subscription',
          customer: input.customerId,
          client_reference_id: input.userId,
          line_items: [{ price: input.priceId, quantity: 1 }],
          success_url: input.successUrl,
          cancel_url: input.cancelUrl,
          metadata: { userId: input.userId, plan: input.plan },
          subscription_data: { metadata: { userId: input.userId, plan: input.plan } },
        }),
      )
      if (!session.url) throw new Error('Stripe returned a checkout session without a URL')
      return session.url
    },
    async createPortalSession({ customerId, returnUrl }) {
      const session = await call(() => stripe.billingPortal.sessions.create({ customer: customerId, return_url: returnUrl }))
      return session.url
    },
    async customerDeleted(customerId) {
      try {
        const customer = await call(() => stripe.customers.retrieve(customerId))
        return 'deleted' in customer && customer.deleted === true
      } catch (err) {
        if (err instanceof StripeMissingError) return false
        throw err
      }
    },
    async listInvoices({ customerId, limit, startingAfter }) {
      const page = await call(() => stripe.invoices.list({ customer: customerId, limit, ...(startingAfter ? { starting_after: startingAfter } : {}) }))
      const items = page.data.map(toInvoice)
      return { items, hasMore: page.has_more, nextCursor: page.has_more ? (items.at(-1)?.id ?? null) : null }
    },
  }
}

/** A verified Stripe event, reduced to what billing acts on. */
export type BillingEvent = { id: string; type: string; createdAt: Date } & (
  | {
      kind: 'checkout_completed'
      userId: string | null
      customerId: string | null
      subscriptionId: string | null
      plan: string | null
      /** False while an asynchronous payment method has not paid yet. */
      paid: boolean
    }
  | {
      kind: 'subscription'
      deleted: boolean
      subscriptionId: string
      customerId: string | null
      userId: string | null
      status: string
      priceIds: string[]
      plan: string | null
      currentPeriodEnd: Date | null
      cancelAtPeriodEnd: boolean
    }
  | { kind: 'payment_failed'; customerId: string | null; subscriptionId: string | null }
  | { kind: 'other' }
)

/** Thrown for a missing, malformed, wrong or stale `Stripe-Signature`. */
export class StripeSignatureError extends Error {
  override readonly name = 'StripeSignatureError'
}

/**
 * Verifies a webhook with the stripe library on the raw body (`receivedAtMs` is the clock the
 * age is measured against) and reduces the event. No API key is needed for this.
 */
export function verifyStripeEvent(rawBody: Buffer, signature: string | undefined, secret: string, receivedAtMs = Date.now()): BillingEvent {
  if (!signature) throw new StripeSignatureError('missing Stripe-Signature header')
  let event: Stripe.Event
  try {
    event = stripeLib().webhooks.constructEvent(rawBody, signature, secret, STRIPE_TOLERANCE_SECONDS, undefined, receivedAtMs)
  } catch (err) {
    if (err instanceof stripeLib().errors.StripeSignatureVerificationError) throw new StripeSignatureError(err.message)
    // a correctly signed body that is not JSON
    throw new StripeSignatureError(`could not read the event: ${(err as Error).message}`)
  }
  // every Stripe event has these; a signed body without them (a hand-made test event) is refused
  // here rather than failing later as a 500 that Stripe would retry for days
  const object = (event as { data?: { object?: unknown } } | undefined)?.data?.object
  if (typeof event?.id !== 'string' || typeof event.type !== 'string' || typeof event.created !== 'number' || typeof object !== 'object' || object === null) {
    throw new StripeSignatureError('the signed body is not a Stripe event (it needs id, type, created and data.object)')
  }
  // Stripe's ids are printable ASCII; the id is stored as the event's idempotency key
  if (!STRIPE_EVENT_ID.test(event.id)) throw new StripeSignatureError('the signed event has a malformed id')
  return reduceEvent(event)
}

const STRIPE_EVENT_ID = /^[\x21-\x7e]{1,255}$/

function reduceEvent(event: Stripe.Event): BillingEvent {
  const base = { id: event.id, type: event.type, createdAt: new Date(event.created * 1000) }
  switch (event.type) {
    case 'checkout.session.completed': {
      const s = event.data.object
      if (s.mode !== 'subscription') return { ...base, kind: 'other' }
      return {
        ...base,
        kind: 'checkout_completed',
        userId: s.client_reference_id ?? s.metadata?.userId ?? null,
        customerId: idOf(s.customer),
        subscriptionId: idOf(s.subscription),
        plan: s.metadata?.plan ?? null,
        paid: s.payment_status !== 'unpaid',
      }
    }
    case 'customer.subscription.created':
    case 'customer.subscription.updated':
    case 'customer.subscription.deleted': {
      const s = event.data.object
      const items = s.items?.data ?? []
      // since API 2025-03-31 the period lives on the items
      const ends = items.map((i) => i.current_period_end).filter((n): n is number => typeof n === 'number')
      return {
        ...base,
        kind: 'subscription',
        deleted: event.type === 'customer.subscription.deleted',
        subscriptionId: s.id,
        customerId: idOf(s.customer),
        userId: s.metadata?.userId ?? null,
        status: s.status,
        priceIds: items.map((i) => i.price?.id).filter((id): id is string => typeof id === 'string'),
        plan: s.metadata?.plan ?? null,
        currentPeriodEnd: ends.length ? new Date(Math.min(...ends) * 1000) : null,
        cancelAtPeriodEnd: Boolean(s.cancel_at_period_end),
      }
    }
    case 'invoice.payment_failed': {
      const i = event.data.object
      return {
        ...base,
        kind: 'payment_failed',
        customerId: idOf(i.customer),
        subscriptionId: idOf(i.parent?.subscription_details?.subscription ?? null),
      }
    }
    default:
      return { ...base, kind: 'other' }
  }
}
