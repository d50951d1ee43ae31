import { randomBytes } from 'node:crypto'
import Stripe from 'stripe'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BillingInfo, BillingUrl, InvoicePage, StripeWebhookResult } from '@llmguard/shared'
import { startTestCollector, type TestCollector } from './helpers/collector.js'
import { count, failure, signUp, type TestUser } from './helpers/accounts.js'
import { startFakeStripe, type FakeStripe } from './fakes/stripe-server.js'

const WEBHOOK_SECRET = 'whsec_test_0123456789abcdef0123456789abcdef'
const PRICE = 'price_pro_test'
let collector: TestCollector
let fake: FakeStripe

beforeAll(async () => {
  fake = await startFakeStripe()
  collector = await startTestCollector({
    env: { STRIPE_SECRET_KEY: 'sk_test_fake', STRIPE_PRICE_PRO: PRICE, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, STRIPE_API_BASE: fake.url },
  })
  await signUp(collector) // the admin; the tests use ordinary users
})
afterAll(async () => {
  await collector?.close()
  await fake?.close()
})

const billing = (user: TestUser) => collector.client.get<BillingInfo>('/v1/billing', { token: user.accessToken })
const checkout = (user: TestUser, body: unknown = { plan: 'pro' }) => collector.client.post<BillingUrl>('/v1/billing/checkout', body, { token: user.accessToken })
const evtId = () => `evt_${randomBytes(12).toString('hex')}`
const now = () => Math.floor(Date.now() / 1000)

/** A Stripe event in the real envelope shape. */
function event(type: string, object: Record<string, unknown>, over: { id?: string; created?: number } = {}) {
  return { id: over.id ?? evtId(), object: 'event', api_version: Stripe.API_VERSION, created: over.created ?? now(), data: { object }, livemode: false, pending_webhooks: 1, request: { id: null, idempotency_key: null }, type }
}

/** Posts the exact bytes Stripe would, signed with the stripe library's test-header helper. */
async function deliver(payload: unknown, opts: { secret?: string; timestamp?: number; signature?: string | null; body?: string } = {}) {
  const body = opts.body ?? JSON.stringify(payload)
  const header = opts.signature === null ? undefined : (opts.signature ?? Stripe.webhooks.generateTestHeaderString({ payload: body, secret: opts.secret ?? WEBHOOK_SECRET, timestamp: opts.timestamp }))
  const res = await request(`${collector.url}/v1/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(header ? { 'stripe-signature': header } : {}) },
    body,
  })
  return { status: res.statusCode, body: (await res.body.json()) as StripeWebhookResult & { error?: { code: string; message: string } } }
}

function subscription(customer: string, userId: string, over: Record<string, unknown> = {}) {
  const id = (over.id as string) ?? `sub_${randomBytes(12).toString('hex')}`
  const periodEnd = now() + 30 * 86_400
  return {
    id,
    object: 'subscription',
    cancel_at_period_end: false,
    customer,
    items: {
      object: 'list',
      data: [{ id: `si_${randomBytes(6).toString('hex')}`, object: 'subscription_item', current_period_start: now(), current_period_end: periodEnd, price: { id: PRICE, object: 'price' }, quantity: 1 }],
      has_more: false,
    },
    metadata: { userId, plan: 'pro' },
    status: 'active',
    ...over,
  }
}

describe('checkout, portal and invoices through the real stripe client', () => {
  it('creates one customer per user and a subscription-mode Checkout session for the configured price', async () => {
    const user = await signUp(collector)
    const first = await checkout(user, { plan: 'pro', successUrl: 'https://app.example.com/ok', cancelUrl: 'https://app.example.com/no' })
    expect(first.url).toMatch(/^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_/)
    const second = await checkout(user)
    expect(second.url).not.toBe(first.url)
    const customers = fake.requests.filter((r) => r.path === '/v1/customers' && r.params['metadata[userId]'] === user.id)
    expect(customers).toHaveLength(1)
    expect(customers[0]).toMatchObject({ authorization: 'Bearer sk_test_fake', idempotencyKey: `llmguard-customer-${user.id}`, params: { email: user.email } })
    const sessions = fake.requests.filter((r) => r.path === '/v1/checkout/sessions' && r.params.client_reference_id === user.id)
    expect(sessions).toHaveLength(2)
    expect(sessions[0]!.params).toMatchObject({
      mode: 'subscription',
      'line_items[0][price]': PRICE,
      'line_items[0][quantity]': '1',
      success_url: 'https://app.example.com/ok',
      cancel_url: 'https://app.example.com/no',
      'subscription_data[metadata][userId]': user.id,
      'subscription_data[metadata][plan]': 'pro',
    })
    expect(sessions[1]!.params.success_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/billing\?checkout=success$/)
    const info = await billing(user)
    expect(info.stripeCustomerId).toBe(sessions[0]!.params.customer)
    expect(fake.customers.has(info.stripeCustomerId!)).toBe(true)
  })

  it('returns a billing-portal URL for a customer, and 409 before there is one', async () => {
    const user = await signUp(collector)
    const err = await failure(collector.client.post('/v1/billing/portal', undefined, { token: user.accessToken }))
    expect([err.status, err.code]).toEqual([409, 'CONFLICT'])
    await checkout(user)
    const portal = await collector.client.post<BillingUrl>('/v1/billing/portal', { returnUrl: 'https://app.example.com/settings' }, { token: user.accessToken })
    expect(portal.url).toMatch(/^https:\/\/billing\.stripe\.com\/p\/session\//)
    const sent = fake.requests.filter((r) => r.path === '/v1/billing_portal/sessions').at(-1)!
    expect(sent.params).toEqual({ customer: (await billing(user)).stripeCustomerId, return_url: 'https://app.example.com/settings' })
  })

  it('lists invoices newest first in cursor pages; none before a customer exists', async () => {
    const user = await signUp(collector)
    expect(await collector.client.get<InvoicePage>('/v1/billing/invoices', { token: user.accessToken })).toEqual({ items: [], hasMore: false, nextCursor: null })
    await checkout(user)
    const customer = (await billing(user)).stripeCustomerId!
    const invoices = [fake.addInvoice(customer), fake.addInvoice(customer), fake.addInvoice(customer, { status: 'open', amount_paid: 0 })]
    const page1 = await collector.client.get<InvoicePage>('/v1/billing/invoices', { token: user.accessToken, query: { limit: 2 } })
    expect(page1.items.map((i) => i.id)).toEqual([invoices[0]!.id, invoices[1]!.id])
    expect(page1).toMatchObject({ hasMore: true, nextCursor: invoices[1]!.id })
    expect(page1.items[0]).toEqual({
      id: invoices[0]!.id,
      number: invoices[0]!.number,
      status: 'paid',
      amountDue: 2900,
      amountPaid: 2900,
      currency: 'usd',
      createdAt: new Date((invoices[0]!.created as number) * 1000).toISOString(),
      periodStart: new Date((invoices[0]!.period_start as number) * 1000).toISOString(),
      periodEnd: new Date((invoices[0]!.period_end as number) * 1000).toISOString(),
      hostedInvoiceUrl: invoices[0]!.hosted_invoice_url,
      invoicePdf: invoices[0]!.invoice_pdf,
    })
    const page2 = await collector.client.get<InvoicePage>('/v1/billing/invoices', { token: user.accessToken, query: { limit: 2, cursor: page1.nextCursor } })
    expect(page2.items.map((i) => [i.id, i.status, i.amountPaid])).toEqual([[invoices[2]!.id, 'open', 0]])
    expect(page2).toMatchObject({ hasMore: false, nextCursor: null })
  })

  it('refuses bad input with 4xx envelopes before calling Stripe', async () => {
    const user = await signUp(collector)
    const before = fake.requests.length
    const cases: [() => Promise<unknown>, number, string][] = [
      [() => checkout(user, { plan: 'enterprise' }), 400, 'VALIDATION_ERROR'],
      [() => checkout(user, { plan: 'free' }), 400, 'VALIDATION_ERROR'],
      [() => checkout(user, {}), 400, 'VALIDATION_ERROR'],
      [() => checkout(user, { plan: 'pro', successUrl: 'javascript:alert(1)' }), 400, 'VALIDATION_ERROR'],
      [() => checkout(user, { plan: 'pro', cancelUrl: 42 }), 400, 'VALIDATION_ERROR'],
      [() => checkout(user, { plan: 'pro', coupon: 'FREE' }), 400, 'VALIDATION_ERROR'],
      [() => collector.client.send('POST', '/v1/billing/checkout', { token: user.accessToken, headers: { 'content-type': 'application/json' }, body: undefined }), 400, 'VALIDATION_ERROR'],
      [() => collector.client.post('/v1/billing/portal', { returnUrl: 'ftp://x' }, { token: user.accessToken }), 400, 'VALIDATION_ERROR'],
      [() => collector.client.get('/v1/billing/invoices', { token: user.accessToken, query: { limit: 0 } }), 400, 'VALIDATION_ERROR'],
      [() => collector.client.get('/v1/billing/invoices', { token: user.accessToken, query: { limit: 101 } }), 400, 'VALIDATION_ERROR'],
      [() => collector.client.get('/v1/billing/invoices', { token: user.accessToken, query: { cursor: "in_x'; drop" } }), 400, 'VALIDATION_ERROR'],
      [() => collector.client.post('/v1/billing/checkout', { plan: 'pro' }), 401, 'UNAUTHORIZED'],
    ]
    for (const [call, status, code] of cases) {
      const err = await failure(call())
      expect([err.status, err.code]).toEqual([status, code])
    }
    const raw = await request(`${collector.url}/v1/billing/checkout`, { method: 'POST', headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': 'application/json' }, body: '{"plan":' })
    expect(raw.statusCode).toBe(400)
    expect(((await raw.body.json()) as { error: { code: string } }).error.code).toBe('MALFORMED_JSON')
    expect(fake.requests.length).toBe(before)
    expect((await billing(user)).stripeCustomerId).toBeNull()
  })

  it('answers 503 BILLING_NOT_CONFIGURED when Stripe refuses the configured key, and 500 on a Stripe outage', async () => {
    const user = await signUp(collector)
    fake.mode = 'bad_key'
    try {
      const err = await failure(checkout(user))
      expect([err.status, err.code]).toEqual([503, 'BILLING_NOT_CONFIGURED'])
      expect(err.message).toContain('Invalid API Key')
      fake.mode = 'error_500'
      const outage = await failure(checkout(user))
      expect([outage.status, outage.code]).toEqual([500, 'INTERNAL'])
    } finally {
      fake.mode = 'ok'
    }
    expect((await billing(user)).stripeCustomerId).toBeNull()
  })
})

describe('Stripe objects that are gone', () => {
  it('answers an unknown invoice cursor with 400, not 503, and keeps the customer linked', async () => {
    const user = await signUp(collector)
    await checkout(user)
    const customer = (await billing(user)).stripeCustomerId!
    fake.addInvoice(customer)
    const err = await failure(collector.client.get('/v1/billing/invoices', { token: user.accessToken, query: { cursor: 'in_doesnotexist' } }))
    expect([err.status, err.code]).toEqual([400, 'VALIDATION_ERROR'])
    expect(err.message).toContain('cursor')
    expect((await billing(user)).stripeCustomerId).toBe(customer)
  })

  it('keeps the link when the key merely cannot see the customer (another account or mode): 503, and all is back once the key is right', async () => {
    const user = await signUp(collector)
    await checkout(user)
    const customer = (await billing(user)).stripeCustomerId!
    const saved = new Map(fake.customers)
    fake.customers.clear() // a test-mode key for live customers: Stripe knows none of them
    try {
      for (const call of [
        () => collector.client.get('/v1/billing/invoices', { token: user.accessToken }),
        () => collector.client.post('/v1/billing/portal', {}, { token: user.accessToken }),
        () => checkout(user),
      ]) {
        const err = await failure(call())
        expect([err.status, err.code]).toEqual([503, 'BILLING_NOT_CONFIGURED'])
        expect(err.message).toContain('test or live')
      }
      expect((await billing(user)).stripeCustomerId).toBe(customer)
    } finally {
      for (const [id, c] of saved) fake.customers.set(id, c)
    }
    expect((await collector.client.post<BillingUrl>('/v1/billing/portal', {}, { token: user.accessToken })).url).toMatch(/^https:/)
  })

  it('unlinks a customer deleted in the Stripe dashboard: invoices are empty, the portal is a 409, and checkout makes a new customer', async () => {
    const user = await signUp(collector)
    await checkout(user)
    const gone = (await billing(user)).stripeCustomerId!
    fake.deleteCustomer(gone)
    expect(await collector.client.get<InvoicePage>('/v1/billing/invoices', { token: user.accessToken })).toEqual({ items: [], hasMore: false, nextCursor: null })
    expect((await billing(user)).stripeCustomerId).toBeNull()

    await checkout(user)
    const second = (await billing(user)).stripeCustomerId!
    fake.deleteCustomer(second)
    const portal = await failure(collector.client.post('/v1/billing/portal', {}, { token: user.accessToken }))
    expect([portal.status, portal.code]).toEqual([409, 'CONFLICT'])
    expect((await billing(user)).stripeCustomerId).toBeNull()

    // linked again, deleted again: checkout itself replaces it (not the idempotent replay of the deleted one)
    await checkout(user)
    const third = (await billing(user)).stripeCustomerId!
    fake.deleteCustomer(third)
    const { url } = await checkout(user)
    expect(url).toMatch(/^https:\/\//)
    const fourth = (await billing(user)).stripeCustomerId!
    expect(new Set([gone, second, third, fourth]).size).toBe(4)
    expect(fake.customers.has(fourth)).toBe(true)
  })
})

describe('POST /v1/webhooks/stripe', () => {
  /** A user who went through checkout (so has a Stripe customer). */
  async function customerUser() {
    const user = await signUp(collector)
    await checkout(user)
    return { user, customer: (await billing(user)).stripeCustomerId! }
  }

  it('moves an account through checkout, renewal, a failed payment and cancellation', async () => {
    const { user, customer } = await customerUser()
    const sub = subscription(customer, user.id)
    const t = now()
    const completed = await deliver(
      event('checkout.session.completed', { id: 'cs_test_1', object: 'checkout.session', mode: 'subscription', customer, subscription: sub.id, client_reference_id: user.id, metadata: { userId: user.id, plan: 'pro' }, payment_status: 'paid', status: 'complete' }, { created: t }),
    )
    expect(completed).toEqual({ status: 200, body: { duplicate: false, applied: true } })
    expect(await billing(user)).toMatchObject({ plan: 'pro', status: 'active', monthlyLimit: 1_000_000, stripeSubscriptionId: sub.id })

    const periodEnd = (sub.items.data[0]!.current_period_end as number) * 1000
    expect((await deliver(event('customer.subscription.created', sub, { created: t }))).body.applied).toBe(true)
    expect(await billing(user)).toMatchObject({ plan: 'pro', nextBillingDate: new Date(periodEnd).toISOString() })

    const failed = event('invoice.payment_failed', { id: 'in_1', object: 'invoice', customer, parent: { type: 'subscription_details', subscription_details: { subscription: sub.id, metadata: {} } } }, { created: t + 1 })
    expect((await deliver(failed)).body).toEqual({ duplicate: false, applied: true })
    expect(await billing(user)).toMatchObject({ plan: 'pro', status: 'past_due' })

    expect((await deliver(event('customer.subscription.updated', { ...sub, cancel_at_period_end: true }, { created: t + 2 }))).body.applied).toBe(true)
    expect(await billing(user)).toMatchObject({ plan: 'pro', status: 'active', cancelAtPeriodEnd: true })

    expect((await deliver(event('customer.subscription.deleted', { ...sub, status: 'canceled' }, { created: t + 3 }))).body.applied).toBe(true)
    expect(await billing(user)).toMatchObject({ plan: 'free', status: 'canceled', monthlyLimit: 10_000, stripeSubscriptionId: null, stripeCustomerId: customer, cancelAtPeriodEnd: false })
  })

  it('applies each event id once: a replay answers 200 {duplicate: true} and changes nothing', async () => {
    const { user, customer } = await customerUser()
    const sub = subscription(customer, user.id)
    const created = event('customer.subscription.created', sub)
    expect((await deliver(created)).body).toEqual({ duplicate: false, applied: true })
    const deleted = event('customer.subscription.deleted', { ...sub, status: 'canceled' }, { created: now() + 1 })
    expect((await deliver(deleted)).body.applied).toBe(true)
    expect((await billing(user)).plan).toBe('free')
    // the creation redelivered (freshly signed) after the deletion is a duplicate: the account stays free
    expect(await deliver(created)).toEqual({ status: 200, body: { duplicate: true } })
    expect(await billing(user)).toMatchObject({ plan: 'free', status: 'canceled' })
  })

  it('ignores an event older than the state it would overwrite (Stripe does not deliver in order)', async () => {
    const { user, customer } = await customerUser()
    const sub = subscription(customer, user.id)
    const t = now()
    await deliver(event('customer.subscription.deleted', { ...sub, status: 'canceled' }, { created: t }))
    const late = await deliver(event('customer.subscription.updated', sub, { created: t - 10 }))
    expect(late.body).toEqual({ duplicate: false, applied: false })
    expect((await billing(user)).plan).toBe('free')
  })

  it('never revives a deleted subscription by a late event of the same second, nor marks the ended account past_due', async () => {
    const { user, customer } = await customerUser()
    const sub = subscription(customer, user.id)
    const t = now()
    expect((await deliver(event('customer.subscription.created', sub, { created: t - 5 }))).body.applied).toBe(true)
    // Stripe's last dunning retry: the deletion and the failed payment share a second, in either order
    expect((await deliver(event('customer.subscription.deleted', { ...sub, status: 'canceled' }, { created: t }))).body.applied).toBe(true)
    const failed = event('invoice.payment_failed', { id: 'in_last', object: 'invoice', customer, parent: { type: 'subscription_details', subscription_details: { subscription: sub.id, metadata: {} } } }, { created: t })
    expect((await deliver(failed)).body).toEqual({ duplicate: false, applied: false })
    // an update of the deleted subscription stamped the same second
    expect((await deliver(event('customer.subscription.updated', sub, { created: t }))).body).toEqual({ duplicate: false, applied: false })
    expect((await deliver(event('checkout.session.completed', { id: 'cs_late', object: 'checkout.session', mode: 'subscription', customer, subscription: sub.id, client_reference_id: user.id, metadata: { userId: user.id, plan: 'pro' }, payment_status: 'paid', status: 'complete' }, { created: t }))).body.applied).toBe(false)
    expect(await billing(user)).toMatchObject({ plan: 'free', status: 'canceled', stripeSubscriptionId: null })
    // a new subscription afterwards applies as usual
    const next = subscription(customer, user.id)
    expect((await deliver(event('customer.subscription.created', next, { created: t + 60 }))).body.applied).toBe(true)
    expect(await billing(user)).toMatchObject({ plan: 'pro', status: 'active', stripeSubscriptionId: next.id })
  })

  it('keeps a paid subscription when its incomplete first state arrives late in the same second', async () => {
    const { user, customer } = await customerUser()
    const sub = subscription(customer, user.id)
    const t = now()
    expect((await deliver(event('customer.subscription.updated', sub, { created: t }))).body.applied).toBe(true)
    expect((await deliver(event('customer.subscription.created', { ...sub, status: 'incomplete' }, { created: t }))).body.applied).toBe(false)
    expect(await billing(user)).toMatchObject({ plan: 'pro', status: 'active', stripeSubscriptionId: sub.id })
  })

  it('gives the free plan to a live subscription on another price without pro metadata', async () => {
    const { user, customer } = await customerUser()
    const sub = subscription(customer, user.id)
    const t = now()
    expect((await deliver(event('customer.subscription.created', sub, { created: t }))).body.applied).toBe(true)
    expect((await billing(user)).plan).toBe('pro')
    const other = { ...sub, metadata: { userId: user.id }, items: { ...sub.items, data: [{ ...sub.items.data[0]!, price: { id: 'price_other', object: 'price' } }] } }
    expect((await deliver(event('customer.subscription.updated', other, { created: t + 1 }))).body.applied).toBe(true)
    expect(await billing(user)).toMatchObject({ plan: 'free', status: 'active', stripeSubscriptionId: sub.id })
  })

  it('acknowledges unknown event types and events for unknown customers without changing anything', async () => {
    const { user, customer } = await customerUser()
    const before = await billing(user)
    expect(await deliver(event('customer.updated', { id: customer, object: 'customer' }))).toEqual({ status: 200, body: { duplicate: false, applied: false } })
    expect(await deliver(event('customer.subscription.updated', subscription('cus_unknown', '00000000-0000-4000-8000-000000000000')))).toEqual({
      status: 200,
      body: { duplicate: false, applied: false },
    })
    // metadata naming this user cannot re-point the account at someone else's customer
    expect((await deliver(event('customer.subscription.created', subscription('cus_someone_else', user.id)))).body.applied).toBe(false)
    // a user id that only looks like one (typed in the dashboard) names nobody: no 500 for Stripe to retry
    for (const id of ['-'.repeat(36), 'g'.repeat(8) + '-0000-4000-8000-000000000000']) {
      const checkout = { id: `cs_${id.length}_${id[0]}`, object: 'checkout.session', mode: 'subscription', customer: 'cus_nobody_yet', subscription: 'sub_x', client_reference_id: id, metadata: { userId: id, plan: 'pro' }, payment_status: 'paid', status: 'complete' }
      expect(await deliver(event('checkout.session.completed', checkout))).toEqual({ status: 200, body: { duplicate: false, applied: false } })
    }
    expect(await billing(user)).toEqual(before)
  })

  it('refuses bad signatures, stale timestamps and unsigned bodies with 400, changing nothing', async () => {
    const { user, customer } = await customerUser()
    const before = await billing(user)
    const events = await count(collector, 'stripe_events')
    const payload = event('customer.subscription.created', subscription(customer, user.id))
    const body = JSON.stringify(payload)
    const cases: [string, Awaited<ReturnType<typeof deliver>>][] = [
      ['wrong secret', await deliver(payload, { secret: 'whsec_another_secret_0123456789abcdef' })],
      ['stale (301 s old)', await deliver(payload, { timestamp: now() - 301 })],
      ['no header', await deliver(payload, { signature: null })],
      ['garbage header', await deliver(payload, { signature: 'not-a-signature' })],
      ['body changed after signing', await deliver(payload, { signature: Stripe.webhooks.generateTestHeaderString({ payload: body, secret: WEBHOOK_SECRET }), body: body.replace('"active"', '"trialing"') })],
    ]
    for (const [name, res] of cases) {
      expect([name, res.status, res.body.error?.code]).toEqual([name, 400, 'WEBHOOK_SIGNATURE_INVALID'])
    }
    // a correctly signed body that is not an event
    const notJson = 'hello'
    const res = await deliver(undefined, { body: notJson, signature: Stripe.webhooks.generateTestHeaderString({ payload: notJson, secret: WEBHOOK_SECRET }) })
    expect([res.status, res.body.error?.code]).toEqual([400, 'WEBHOOK_SIGNATURE_INVALID'])
    // signed events without data.object, or with an id that is no Stripe id: 400, never a 500
    const { data: _data, ...noData } = payload
    for (const odd of [noData, { ...payload, data: { object: null } }, { ...payload, id: 'evt_\u0000' }, { ...payload, id: '' }]) {
      const oddRes = await deliver(odd as typeof payload)
      expect([oddRes.status, oddRes.body.error?.code]).toEqual([400, 'WEBHOOK_SIGNATURE_INVALID'])
    }
    expect(await count(collector, 'stripe_events')).toBe(events)
    expect(await billing(user)).toEqual(before)
    // the same event, properly signed and fresh, is accepted
    expect((await deliver(payload)).body).toEqual({ duplicate: false, applied: true })
    expect((await billing(user)).plan).toBe('pro')
  })

  it('keeps an enterprise plan set by an administrator when Stripe events arrive', async () => {
    const admin = await collector.client.post<{ tokens: { accessToken: string } }>('/v1/auth/login', { email: (await collector.sql<{ email: string }[]>`select email from users where role = 'admin'`)[0]!.email, password: 'correct horse battery staple' })
    const { user, customer } = await customerUser()
    await collector.client.put(`/v1/admin/users/${user.id}/plan`, { plan: 'enterprise', monthlyLimit: 42 }, { token: admin.tokens.accessToken })
    const err = await failure(checkout(user))
    expect([err.status, err.code]).toEqual([409, 'CONFLICT'])
    await deliver(event('customer.subscription.deleted', { ...subscription(customer, user.id), status: 'canceled' }))
    expect(await billing(user)).toMatchObject({ plan: 'enterprise', monthlyLimit: 42 })
  })
})
