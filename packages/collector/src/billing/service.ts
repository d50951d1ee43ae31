import { idSchema, PLAN_MONTHLY_LIMITS, type BillingInfo, type BillingPlan, type BillingStatus, type InvoicePage, type StripeWebhookResult } from '@llmguard/shared'
import type { Db, Sql } from '../db/connect.js'
import { AppError, notFound } from '../http/errors.js'
import { StripeConfigError, StripeMissingError, type BillingEvent, type StripeBilling } from '../integrations/stripe.js'
import type { Logger } from '../logger.js'
import { monthOf } from './meter.js'
import * as store from './store.js'

export interface BillingServiceDeps {
  sql: Sql
  logger: Logger
  /** Built from STRIPE_SECRET_KEY; undefined without it (checkout, portal and invoices answer 503). */
  stripe: StripeBilling | undefined
  /** STRIPE_PRICE_PRO. */
  pricePro: string | undefined
  limitsEnforced: boolean
  /** The embedded database: this process is the only instance. */
  embedded: boolean
  now(): Date
}

/** Subscription statuses that keep the paid plan (past_due: Stripe is still retrying the payment). */
const LIVE_STATUSES = new Set(['active', 'trialing', 'past_due'])

export function limitOf(account: Pick<store.BillingAccount, 'plan' | 'monthlyLimit'>): number {
  if (account.plan === 'enterprise') return account.monthlyLimit ?? PLAN_MONTHLY_LIMITS.free
  return PLAN_MONTHLY_LIMITS[account.plan]
}

const notConfigured = () =>
  new AppError('BILLING_NOT_CONFIGURED', 'billing is not configured on this collector: set STRIPE_SECRET_KEY (and STRIPE_PRICE_PRO for checkout)')

export type BillingService = ReturnType<typeof createBillingService>

export function createBillingService(deps: BillingServiceDeps) {
  const { sql, logger } = deps

  function stripe(): StripeBilling {
    if (!deps.stripe) throw notConfigured()
    return deps.stripe
  }

  /** Stripe refusing our key or price is a configuration problem of this install: 503, not 500. */
  async function viaStripe<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (err) {
      if (err instanceof StripeConfigError) {
        logger.error({ err: err.message }, 'Stripe refused a billing request')
        throw new AppError('BILLING_NOT_CONFIGURED', err.message)
      }
      throw err
    }
  }

  async function info(userId: string): Promise<BillingInfo> {
    const account = (await store.findAccount(sql, userId)) ?? store.defaultAccount(userId)
    const month = monthOf(deps.now())
    const usage = await store.usageOf(sql, userId, month.key)
    return {
      userId,
      plan: account.plan,
      status: account.status as BillingStatus,
      usage,
      monthlyLimit: limitOf(account),
      limitsEnforced: deps.limitsEnforced,
      periodStart: month.start.toISOString(),
      usageResetsAt: month.next.toISOString(),
      nextBillingDate: (account.currentPeriodEnd ?? month.next).toISOString(),
      stripeCustomerId: account.stripeCustomerId,
      stripeSubscriptionId: account.stripeSubscriptionId,
      cancelAtPeriodEnd: account.cancelAtPeriodEnd,
    }
  }

  /** Customer creations under way in this process, by user: concurrent first checkouts share one. */
  const creating = new Map<string, Promise<string>>()

  /**
   * The user's Stripe customer, created on first use, once however many checkouts ask at the
   * same moment. The idempotency key alone is not enough: Stripe refuses (409) a request that
   * reuses the key of one still executing, so the second checkout failed whenever the first
   * customer took longer than the client's one retry.
   */
  async function customerOf(userId: string): Promise<string> {
    const account = await store.findAccount(sql, userId)
    if (account?.stripeCustomerId) return account.stripeCustomerId
    let pending = creating.get(userId)
    if (!pending) {
      pending = createCustomer(userId).finally(() => creating.delete(userId))
      creating.set(userId, pending)
    }
    return pending
  }

  /**
   * Other instances on the same database are kept out by a lock held across the Stripe call (it
   * holds a pooled connection for that call, on a user's first checkout only). The embedded
   * database is one instance, so the in-process sharing suffices there, and holding its only
   * connection across a Stripe call would stall every query meanwhile.
   */
  function createCustomer(userId: string): Promise<string> {
    if (deps.embedded) return createCustomerIn(sql, userId)
    return sql.begin(async (tx) => {
      await store.lockCustomerCreation(tx, userId)
      return createCustomerIn(tx, userId)
    }) as Promise<string>
  }

  async function createCustomerIn(db: Db, userId: string): Promise<string> {
    // read again: the lock's previous holder may have linked one
    const account = await store.findAccount(db, userId)
    if (account?.stripeCustomerId) return account.stripeCustomerId
    const user = await store.userExists(db, userId)
    if (!user) throw notFound('user')
    const replacing = account?.deletedCustomerId ?? undefined
    const created = await viaStripe(() => stripe().createCustomer({ userId, email: user.email, replacing }))
    return store.linkCustomer(db, userId, created)
  }

  /**
   * Stripe answered "no such customer" for the linked one. Deleted (in the dashboard): forget it,
   * so a new one is made. Merely not visible to this key (a key of another account or mode):
   * the install's configuration, and the link stays for when the key is put right.
   */
  async function forgetCustomer(userId: string, customerId: string, err: StripeMissingError): Promise<void> {
    if (!(await viaStripe(() => stripe().customerDeleted(customerId)))) {
      const message = `Stripe has no customer ${customerId} under STRIPE_SECRET_KEY: is it a key of the account and mode (test or live) the customer was created in?`
      logger.error({ userId, customerId, err: err.message }, message)
      throw new AppError('BILLING_NOT_CONFIGURED', message)
    }
    logger.warn({ userId, customerId }, 'Stripe deleted the linked customer: unlinked')
    await store.unlinkCustomer(sql, userId, customerId)
  }

  const missing = (err: unknown, what: StripeMissingError['what']): err is StripeMissingError => err instanceof StripeMissingError && err.what === what

  return {
    info,

    async checkout(userId: string, input: { plan: 'pro'; successUrl: string; cancelUrl: string }): Promise<{ url: string }> {
      const client = stripe()
      if (!deps.pricePro) throw notConfigured()
      const account = await store.findAccount(sql, userId)
      if (account?.plan === 'enterprise') throw new AppError('CONFLICT', 'this account is on an enterprise plan: billing changes go through your administrator')
      if (account?.stripeSubscriptionId && LIVE_STATUSES.has(account.status)) {
        throw new AppError('CONFLICT', 'already subscribed: manage the subscription in the billing portal (POST /v1/billing/portal)')
      }
      const session = (customerId: string) =>
        viaStripe(() => client.createCheckoutSession({ customerId, userId, priceId: deps.pricePro!, plan: input.plan, successUrl: input.successUrl, cancelUrl: input.cancelUrl }))
      const customerId = await customerOf(userId)
      try {
        return { url: await session(customerId) }
      } catch (err) {
        if (!missing(err, 'customer')) throw err
        await forgetCustomer(userId, customerId, err)
        return { url: await session(await customerOf(userId)) }
      }
    },

    async portal(userId: string, returnUrl: string): Promise<{ url: string }> {
      const client = stripe()
      const account = await store.findAccount(sql, userId)
      const noCustomer = () => new AppError('CONFLICT', 'no Stripe customer yet: start a subscription with POST /v1/billing/checkout first')
      if (!account?.stripeCustomerId) throw noCustomer()
      try {
        return { url: await viaStripe(() => client.createPortalSession({ customerId: account.stripeCustomerId!, returnUrl })) }
      } catch (err) {
        if (!missing(err, 'customer')) throw err
        await forgetCustomer(userId, account.stripeCustomerId, err)
        throw noCustomer()
      }
    },

    async invoices(userId: string, page: { limit: number; cursor?: string }): Promise<InvoicePage> {
      const client = stripe()
      const account = await store.findAccount(sql, userId)
      const none: InvoicePage = { items: [], hasMore: false, nextCursor: null }
      if (!account?.stripeCustomerId) return none
      try {
        return await viaStripe(() => client.listInvoices({ customerId: account.stripeCustomerId!, limit: page.limit, startingAfter: page.cursor }))
      } catch (err) {
        if (missing(err, 'cursor')) {
          throw new AppError('VALIDATION_ERROR', 'invalid query: cursor names no invoice of this account', { issues: [{ path: 'query.cursor', message: 'no such invoice: use nextCursor of the previous page' }] })
        }
        if (!missing(err, 'customer')) throw err
        await forgetCustomer(userId, account.stripeCustomerId, err)
        return none
      }
    },

    /** Admin: set a user's plan (enterprise with its custom limit). Stripe state is kept. */
    async setPlan(userId: string, plan: BillingPlan, monthlyLimit: number | undefined): Promise<BillingInfo> {
      if (!(await store.userExists(sql, userId))) throw notFound('user')
      await store.updateAccount(sql, userId, { plan, monthlyLimit: plan === 'enterprise' ? monthlyLimit! : null })
      logger.info({ userId, plan, monthlyLimit }, 'plan set by an administrator')
      return info(userId)
    },

    /**
     * Applies a verified Stripe event once: its id is claimed in the same transaction that
     * applies it, so a failure leaves the id free for Stripe's retry and a replay changes nothing.
     */
    async handleEvent(event: BillingEvent): Promise<StripeWebhookResult> {
      const result = await sql.begin(async (tx) => {
        if (!(await store.claimEvent(tx, event.id, event.type))) return { duplicate: true }
        const userId = await apply(tx, event, deps, logger)
        if (userId) await store.noteEventUser(tx, event.id, userId)
        return { duplicate: false, applied: Boolean(userId) }
      })
      return result as StripeWebhookResult
    },
  }
}

/** The account an event is about: by Stripe customer, else by the user id our checkout put in the metadata. */
async function accountFor(db: Db, customerId: string | null, userId: string | null): Promise<store.BillingAccount | undefined> {
  if (customerId) {
    const byCustomer = await store.findAccountByCustomer(db, customerId)
    if (byCustomer) return byCustomer
  }
  // the metadata is free text in Stripe's dashboard: anything but one of our ids (a UUID) names
  // nobody, and must not reach the uuid column (a 500 that Stripe would retry for days)
  if (!userId || !idSchema.safeParse(userId).success || !(await store.userExists(db, userId))) return undefined
  const account = await store.lockAccount(db, userId)
  // a customer linked to someone else is never re-pointed by metadata
  if (customerId && account.stripeCustomerId && account.stripeCustomerId !== customerId) return undefined
  return account
}

/** Changes plan and status for one event; returns the user it applied to, or undefined when it changed nothing. */
async function apply(tx: Db, event: BillingEvent, deps: BillingServiceDeps, logger: Logger): Promise<string | undefined> {
  if (event.kind === 'other') return undefined
  const userId = event.kind === 'payment_failed' ? null : event.userId
  const account = await accountFor(tx, event.customerId, userId)
  if (!account) {
    logger.warn({ eventId: event.id, type: event.type }, 'Stripe event for no known account: acknowledged and ignored')
    return undefined
  }
  // Stripe does not deliver in order: an event older than the state it would overwrite is stale
  if (account.stripeEventAt && event.createdAt < account.stripeEventAt) {
    logger.info({ eventId: event.id, type: event.type }, 'Stripe event older than the applied state: ignored')
    return undefined
  }
  // a deleted subscription never comes back: a late event of it (of the deletion's second, so
  // not older by `created`) changes nothing
  const subscriptionId = event.subscriptionId
  if (subscriptionId && subscriptionId === account.endedSubscriptionId) {
    logger.info({ eventId: event.id, type: event.type }, 'Stripe event of a subscription already deleted: ignored')
    return undefined
  }
  const keep = account.plan === 'enterprise' // an administrator's plan is not changed by Stripe
  const common = { stripeEventAt: event.createdAt, ...(event.customerId ? { stripeCustomerId: event.customerId } : {}) }
  switch (event.kind) {
    case 'checkout_completed': {
      if (!event.paid) return undefined // the subscription events follow once the payment settles
      await store.updateAccount(tx, account.userId, {
        ...common,
        plan: keep ? account.plan : 'pro',
        status: 'active',
        stripeSubscriptionId: event.subscriptionId ?? account.stripeSubscriptionId,
      })
      return account.userId
    }
    case 'subscription': {
      const other = account.stripeSubscriptionId && account.stripeSubscriptionId !== event.subscriptionId
      const live = !event.deleted && LIVE_STATUSES.has(event.status)
      // the end of a subscription the account no longer uses changes nothing
      if (other && !live) return undefined
      // `incomplete` is a subscription's first status only: once it left it (paid, or expired) an
      // `incomplete` of the same second (its created event) is the older state
      if (event.status === 'incomplete' && !event.deleted && !other && account.stripeSubscriptionId === event.subscriptionId && account.status !== 'incomplete') return undefined
      const paid = (deps.pricePro !== undefined && event.priceIds.includes(deps.pricePro)) || event.plan === 'pro'
      await store.updateAccount(tx, account.userId, {
        ...common,
        plan: keep ? account.plan : live && paid ? 'pro' : 'free',
        status: event.deleted ? 'canceled' : event.status,
        stripeSubscriptionId: event.deleted ? null : event.subscriptionId,
        ...(event.deleted ? { endedSubscriptionId: event.subscriptionId } : {}),
        currentPeriodEnd: event.deleted ? null : event.currentPeriodEnd,
        cancelAtPeriodEnd: event.deleted ? false : event.cancelAtPeriodEnd,
      })
      return account.userId
    }
    case 'payment_failed': {
      // a failure of a subscription the account no longer has (another one, or none: deleted
      // while Stripe's last retry failed) changes nothing
      if (event.subscriptionId && event.subscriptionId !== account.stripeSubscriptionId) return undefined
      // the plan stays while Stripe retries; a final failure arrives as a subscription update or deletion
      await store.updateAccount(tx, account.userId, { ...common, status: 'past_due' })
      return account.userId
    }
  }
}
