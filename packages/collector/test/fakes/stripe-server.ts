import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export type FakeStripeMode = 'ok' | 'bad_key' | 'error_500'

export interface FakeStripeRequest {
  method: string
  path: string
  /** The form body (or query for GETs) as flat `key[sub]` → value pairs, as stripe-node encodes them. */
  params: Record<string, string>
  authorization?: string
  idempotencyKey?: string
  stripeVersion?: string
}

export interface FakeStripe {
  /** STRIPE_API_BASE for the collector. */
  url: string
  mode: FakeStripeMode
  requests: FakeStripeRequest[]
  customers: Map<string, Record<string, unknown>>
  /** Customers deleted (in the dashboard): retrieving one answers `{deleted: true}`. */
  deletedCustomers: Set<string>
  deleteCustomer(id: string): void
  /** Invoices by customer, newest first (as Stripe lists them). */
  invoices: Map<string, Record<string, unknown>[]>
  addInvoice(customerId: string, over?: Record<string, unknown>): Record<string, unknown>
  /** Milliseconds to take over requests by `METHOD /path` (e.g. `POST /v1/customers`), to hold one in flight. */
  delays: Map<string, number>
  close(): Promise<void>
}

const id = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`
const now = () => Math.floor(Date.now() / 1000)

function customer(params: Record<string, string>) {
  return {
    id: id('cus'),
    object: 'customer',
    address: null,
    balance: 0,
    created: now(),
    currency: null,
    default_source: null,
    delinquent: false,
    description: null,
    email: params.email ?? null,
    invoice_prefix: randomBytes(4).toString('hex').toUpperCase(),
    invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
    livemode: false,
    metadata: metadataOf(params),
    name: null,
    phone: null,
    preferred_locales: [],
    shipping: null,
    tax_exempt: 'none',
    test_clock: null,
  }
}

function metadataOf(params: Record<string, string>, prefix = 'metadata') {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(params)) {
    const m = new RegExp(`^${prefix.replace(/[[\]]/g, '\\$&')}\\[([^\\]]+)\\]$`).exec(k)
    if (m) out[m[1]!] = v
  }
  return out
}

function checkoutSession(params: Record<string, string>) {
  const sessionId = `cs_test_${randomBytes(16).toString('hex')}`
  return {
    id: sessionId,
    object: 'checkout.session',
    allow_promotion_codes: null,
    amount_subtotal: 2900,
    amount_total: 2900,
    billing_address_collection: null,
    cancel_url: params.cancel_url ?? null,
    client_reference_id: params.client_reference_id ?? null,
    created: now(),
    currency: 'usd',
    customer: params.customer ?? null,
    customer_email: null,
    expires_at: now() + 86_400,
    livemode: false,
    locale: null,
    metadata: metadataOf(params),
    mode: params.mode,
    payment_intent: null,
    payment_method_types: ['card'],
    payment_status: 'unpaid',
    status: 'open',
    subscription: null,
    success_url: params.success_url ?? null,
    ui_mode: 'hosted',
    url: `https://checkout.stripe.com/c/pay/${sessionId}`,
  }
}

function portalSession(params: Record<string, string>) {
  const sessionId = id('bps')
  return {
    id: sessionId,
    object: 'billing_portal.session',
    configuration: id('bpc'),
    created: now(),
    customer: params.customer,
    flow: null,
    livemode: false,
    locale: null,
    on_behalf_of: null,
    return_url: params.return_url ?? null,
    url: `https://billing.stripe.com/p/session/test_${sessionId}`,
  }
}

/**
 * A loopback stand-in for the few Stripe API endpoints billing uses (customers, checkout
 * sessions, billing-portal sessions, the invoice list), answering with Stripe's object shapes
 * and error envelopes, used through the real `stripe` client (host/port/protocol options).
 */
export async function startFakeStripe(): Promise<FakeStripe> {
  const sockets = new Set<Socket>()
  const idempotent = new Map<string, unknown>()
  /** Idempotency keys of requests still being answered: Stripe refuses a second one with 409. */
  const inFlight = new Set<string>()
  const fake: FakeStripe = {
    url: '',
    mode: 'ok',
    requests: [],
    customers: new Map(),
    deletedCustomers: new Set(),
    deleteCustomer(id) {
      fake.customers.delete(id)
      fake.deletedCustomers.add(id)
    },
    invoices: new Map(),
    addInvoice(customerId, over = {}) {
      const created = now() - 86_400 * ((fake.invoices.get(customerId)?.length ?? 0) + 1)
      const invoice = {
        id: `in_${randomBytes(12).toString('hex')}`,
        object: 'invoice',
        amount_due: 2900,
        amount_paid: 2900,
        amount_remaining: 0,
        created,
        currency: 'usd',
        customer: customerId,
        hosted_invoice_url: 'https://invoice.stripe.com/i/acct_test/test_inv',
        invoice_pdf: 'https://pay.stripe.com/invoice/acct_test/test_inv/pdf',
        lines: { object: 'list', data: [], has_more: false, url: '/v1/invoices/lines' },
        livemode: false,
        metadata: {},
        number: `LLMG-${String((fake.invoices.get(customerId)?.length ?? 0) + 1).padStart(4, '0')}`,
        parent: null,
        period_end: created,
        period_start: created - 30 * 86_400,
        status: 'paid',
        total: 2900,
        ...over,
      }
      fake.invoices.set(customerId, [...(fake.invoices.get(customerId) ?? []), invoice])
      return invoice
    },
    delays: new Map(),
    close: async () => undefined,
  }
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const url = new URL(req.url ?? '/', 'http://localhost')
    const form = req.method === 'GET' ? url.searchParams : new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
    const params = Object.fromEntries(form.entries())
    const idempotencyKey = req.headers['idempotency-key'] as string | undefined
    fake.requests.push({
      method: req.method ?? '',
      path: url.pathname,
      params,
      authorization: req.headers.authorization,
      idempotencyKey,
      stripeVersion: req.headers['stripe-version'] as string | undefined,
    })
    const json = (status: number, body: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': id('req') }).end(JSON.stringify(body))
    const invalid = (message: string, param?: string, status = 400) =>
      json(status, { error: { type: 'invalid_request_error', message, ...(param ? { param } : {}), ...(message.startsWith('No such ') ? { code: 'resource_missing' } : {}) } })

    if (fake.mode === 'bad_key') return invalid('Invalid API Key provided: sk_test_****', undefined, 401)
    if (fake.mode === 'error_500') return json(500, { error: { type: 'api_error', message: 'An unknown error occurred' } })
    if (!req.headers.authorization?.startsWith('Bearer sk_')) return invalid('You did not provide an API key.', undefined, 401)

    const key = `${req.method} ${url.pathname}`
    const idem = idempotencyKey && req.method === 'POST' ? `${key} ${idempotencyKey}` : undefined
    if (idem && idempotent.has(idem)) return json(200, idempotent.get(idem))
    // as Stripe does: a request reusing the key of one still executing is refused, not queued
    // (stripe-node retries a 409 after its backoff)
    if (idem && inFlight.has(idem)) {
      return json(409, { error: { type: 'idempotency_error', message: `There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ${idempotencyKey}. Please try again later.` } })
    }
    const delay = fake.delays.get(key)
    if (delay) {
      if (idem) inFlight.add(idem)
      await new Promise((resolve) => setTimeout(resolve, delay))
      if (idem) inFlight.delete(idem)
    }
    const remember = (body: unknown) => {
      if (idem) idempotent.set(idem, body)
      json(200, body)
    }
    switch (key) {
      case 'POST /v1/customers': {
        const c = customer(params)
        fake.customers.set(c.id, c)
        return remember(c)
      }
      case 'POST /v1/checkout/sessions': {
        if (!params.customer || !fake.customers.has(params.customer)) return invalid(`No such customer: '${params.customer}'`, 'customer')
        if (params['line_items[0][price]'] !== 'price_pro_test') return invalid(`No such price: '${params['line_items[0][price]']}'`, 'line_items[0][price]')
        if (!params.success_url) return invalid('Missing required param: success_url.', 'success_url')
        return remember(checkoutSession(params))
      }
      case 'POST /v1/billing_portal/sessions': {
        if (!params.customer || !fake.customers.has(params.customer)) return invalid(`No such customer: '${params.customer}'`, 'customer')
        return remember(portalSession(params))
      }
      case 'GET /v1/invoices': {
        if (params.customer && !fake.customers.has(params.customer)) return invalid(`No such customer: '${params.customer}'`, 'customer')
        const all = params.customer ? (fake.invoices.get(params.customer) ?? []) : [...fake.invoices.values()].flat()
        const limit = Number(params.limit ?? 10)
        const start = params.starting_after ? all.findIndex((i) => i.id === params.starting_after) + 1 : 0
        if (params.starting_after && start === 0) return invalid(`No such invoice: '${params.starting_after}'`, 'starting_after')
        const data = all.slice(start, start + limit)
        return json(200, { object: 'list', data, has_more: start + limit < all.length, url: '/v1/invoices' })
      }
      default: {
        const customerPath = /^GET \/v1\/customers\/([^/]+)$/.exec(key)
        if (customerPath) {
          const id = decodeURIComponent(customerPath[1]!)
          if (fake.customers.has(id)) return json(200, fake.customers.get(id))
          if (fake.deletedCustomers.has(id)) return json(200, { id, object: 'customer', deleted: true })
          return invalid(`No such customer: '${id}'`, 'id', 404)
        }
        return invalid(`Unrecognized request URL (${req.method}: ${url.pathname}).`, undefined, 404)
      }
    }
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  fake.close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resolve())
    })
  return fake
}
