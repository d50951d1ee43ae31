import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { BillingInfo, BillingUrl } from '@llmguard/shared'
import { onRealPostgres, startTestCollector, type TestCollector } from './helpers/collector.js'
import { signUp, type TestUser } from './helpers/accounts.js'
import { startFakeStripe, type FakeStripe } from './fakes/stripe-server.js'

/**
 * Two first checkouts of one user at the same moment. Stripe answers a request that reuses the
 * idempotency key of one still executing with 409 (the fake does the same), so leaning on the
 * key alone made the second checkout fail whenever the first customer took longer than the
 * client's retry; and it is the collector's job, not Stripe's, to ask for one customer per user.
 */

const env = (fake: FakeStripe) => ({ STRIPE_SECRET_KEY: 'sk_test_fake', STRIPE_PRICE_PRO: 'price_pro_test', STRIPE_API_BASE: fake.url })
/** Longer than stripe-node's retry backoff (0.5 s), so the first request is still in flight at the retry. */
const SLOW_CUSTOMER_MS = 1_500

let fake: FakeStripe
let collector: TestCollector

beforeAll(async () => {
  fake = await startFakeStripe()
  collector = await startTestCollector({ env: env(fake) })
  await signUp(collector) // the admin; the tests use ordinary users
})
afterAll(async () => {
  await collector?.close()
  await fake?.close()
})
afterEach(() => fake.delays.clear())

const checkout = (c: TestCollector, user: TestUser) => c.client.post<BillingUrl>('/v1/billing/checkout', { plan: 'pro' }, { token: user.accessToken })

/** Both checkouts answered with a URL, on one customer, and Stripe was asked for exactly one. */
async function expectOneCustomer(c: TestCollector, user: TestUser, results: PromiseSettledResult<BillingUrl>[]) {
  expect(results.map((r) => (r.status === 'fulfilled' ? 'ok' : String(r.reason)))).toEqual(['ok', 'ok'])
  const creates = fake.requests.filter((r) => r.path === '/v1/customers' && r.method === 'POST' && r.params['metadata[userId]'] === user.id)
  expect(creates).toHaveLength(1)
  const customers = [...fake.customers.values()].filter((c) => (c.metadata as Record<string, string>).userId === user.id)
  expect(customers).toHaveLength(1)
  const sessions = fake.requests.filter((r) => r.path === '/v1/checkout/sessions' && r.params.client_reference_id === user.id)
  expect(sessions.map((s) => s.params.customer)).toEqual([customers[0]!.id, customers[0]!.id])
  const info = await c.client.get<BillingInfo>('/v1/billing', { token: user.accessToken })
  expect(info.stripeCustomerId).toBe(customers[0]!.id)
}

describe('two first checkouts of one user at the same moment', () => {
  it('ask Stripe for one customer and both answer with a Checkout URL', async () => {
    const user = await signUp(collector)
    fake.delays.set('POST /v1/customers', SLOW_CUSTOMER_MS)
    const results = await Promise.allSettled([checkout(collector, user), checkout(collector, user)])
    await expectOneCustomer(collector, user, results)
  })

  it('do so after the linked customer was deleted in Stripe, making one replacement', async () => {
    const user = await signUp(collector)
    await checkout(collector, user)
    const [first] = [...fake.customers.values()].filter((c) => (c.metadata as Record<string, string>).userId === user.id)
    fake.deleteCustomer(first!.id as string)
    const before = fake.requests.length
    fake.delays.set('POST /v1/customers', SLOW_CUSTOMER_MS)
    const results = await Promise.allSettled([checkout(collector, user), checkout(collector, user)])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled'])
    const creates = fake.requests.slice(before).filter((r) => r.path === '/v1/customers' && r.method === 'POST' && r.params['metadata[userId]'] === user.id)
    expect(creates).toHaveLength(1)
    expect(creates[0]!.idempotencyKey).toBe(`llmguard-customer-${user.id}-after-${first!.id as string}`)
    const live = [...fake.customers.values()].filter((c) => (c.metadata as Record<string, string>).userId === user.id)
    expect(live).toHaveLength(1)
    const info = await collector.client.get<BillingInfo>('/v1/billing', { token: user.accessToken })
    expect(info.stripeCustomerId).toBe(live[0]!.id)
  })

  it.runIf(onRealPostgres())('on two instances sharing one database, ask Stripe for one customer', async () => {
    const second = await startTestCollector({ databaseUrl: collector.databaseUrl, keepData: true, env: env(fake) })
    try {
      const user = await signUp(collector)
      fake.delays.set('POST /v1/customers', SLOW_CUSTOMER_MS)
      const results = await Promise.allSettled([checkout(collector, user), checkout(second, user)])
      await expectOneCustomer(collector, user, results)
    } finally {
      await second.close()
    }
  })
})
