import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { LOGIN_LIMITS } from '../src/auth/service.js'
import { startTestCollector, type TestCollector } from './helpers/collector.js'
import { PASSWORD, signUp, type TestUser } from './helpers/accounts.js'

let collector: TestCollector
let user: TestUser

beforeAll(async () => {
  // one trusted proxy: the client address comes from X-Forwarded-For, so one test plays many clients
  collector = await startTestCollector({ env: { TRUST_PROXY: '1' } })
  user = await signUp(collector)
})
afterAll(() => collector?.close())

// the limits count in fixed 15-minute windows: a test whose tries straddle the turn of one
// would see its counts split in two. Each starts with at least 30 s of its window left.
beforeEach(async () => {
  const left = LOGIN_LIMITS.windowMs - (Date.now() % LOGIN_LIMITS.windowMs)
  if (left < 30_000) await new Promise((resolve) => setTimeout(resolve, left + 100))
}, 40_000)

async function login(email: string, password: string, ip: string) {
  const res = await request(`${collector.url}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
    body: JSON.stringify({ email, password }),
  })
  const body = (await res.body.json()) as { error?: { code: string } }
  return { status: res.statusCode, code: body.error?.code, retryAfter: res.headers['retry-after'] }
}

describe('login attempt limits', () => {
  it('per email from one address: the right password is refused there too, while its owner elsewhere still logs in', async () => {
    const victim = await signUp(collector)
    for (let i = 0; i < LOGIN_LIMITS.perEmailAndAddress; i++) {
      expect((await login(victim.email, 'wrong password', '10.0.0.1')).code).toBe('INVALID_CREDENTIALS')
    }
    const limited = await login(victim.email, PASSWORD, '10.0.0.1')
    expect([limited.status, limited.code]).toEqual([429, 'RATE_LIMITED'])
    expect(Number(limited.retryAfter)).toBeGreaterThanOrEqual(1)
    expect(Number(limited.retryAfter)).toBeLessThanOrEqual(15 * 60)
    // another account from the same address is not affected
    const other = await signUp(collector)
    expect((await login(other.email, PASSWORD, '10.0.0.1')).status).toBe(200)
    // going on from there (refused, fast: no password check) never counts for the account
    for (let i = 0; i < LOGIN_LIMITS.perEmail + 5; i++) expect((await login(victim.email, 'wrong password', '10.0.0.1')).code).toBe('RATE_LIMITED')
    // someone who knows an email cannot lock its owner out from their own address
    expect((await login(victim.email, PASSWORD, '10.0.0.2')).status).toBe(200)
  })

  it('per email across addresses: guesses spread over many addresses are bounded too', async () => {
    const victim = await signUp(collector)
    // each address stays under its own limits
    const perAddress = LOGIN_LIMITS.perEmailAndAddress
    for (let i = 0; i < LOGIN_LIMITS.perEmail; i++) {
      const res = await login(victim.email, 'wrong password', `10.1.${Math.floor(i / perAddress)}.1`)
      expect(res.code).toBe('INVALID_CREDENTIALS')
    }
    const limited = await login(victim.email, PASSWORD, '10.1.250.1')
    expect([limited.status, limited.code]).toEqual([429, 'RATE_LIMITED'])
  })

  it('per email across addresses holds for tries arriving all at once', async () => {
    const victim = await signUp(collector)
    // 15 addresses × 10 wrong passwords at once: each address within its own limits
    const tries = Array.from({ length: 15 * LOGIN_LIMITS.perEmailAndAddress }, (_, i) => login(victim.email, 'wrong password', `10.3.${i % 15}.1`))
    const codes = (await Promise.all(tries)).map((r) => r.code)
    expect(codes.filter((c) => c === 'INVALID_CREDENTIALS')).toHaveLength(LOGIN_LIMITS.perEmail)
    expect(codes.filter((c) => c === 'RATE_LIMITED')).toHaveLength(15 * LOGIN_LIMITS.perEmailAndAddress - LOGIN_LIMITS.perEmail)
  })

  it("where the owner logged in lately the account's limit does not apply: spending it elsewhere does not lock them out there", async () => {
    const victim = await signUp(collector)
    expect((await login(victim.email, PASSWORD, '10.4.0.1')).status).toBe(200)
    expect((await login(victim.email, PASSWORD, '10.4.0.3')).status).toBe(200)
    for (let i = 0; i < LOGIN_LIMITS.perEmail; i++) {
      expect((await login(victim.email, 'wrong password', `10.5.${Math.floor(i / LOGIN_LIMITS.perEmailAndAddress)}.1`)).code).toBe('INVALID_CREDENTIALS')
    }
    expect((await login(victim.email, PASSWORD, '10.6.0.1')).code).toBe('RATE_LIMITED')
    expect((await login(victim.email, PASSWORD, '10.4.0.1')).status).toBe(200)
    // a known address is still held to its own limit
    for (let i = 0; i < LOGIN_LIMITS.perEmailAndAddress; i++) expect((await login(victim.email, 'wrong password', '10.4.0.1')).code).toBe('INVALID_CREDENTIALS')
    expect((await login(victim.email, PASSWORD, '10.4.0.1')).code).toBe('RATE_LIMITED')
    // and known for knownAddressDays only
    await collector.sql`update login_known_addresses set last_login_at = now() - ${LOGIN_LIMITS.knownAddressDays + 1} * interval '1 day' where user_id = ${victim.id}`
    const aged = await login(victim.email, PASSWORD, '10.4.0.3')
    expect([aged.status, aged.code]).toEqual([429, 'RATE_LIMITED'])
  })

  it("known addresses belong to the account, not its email: a new owner of the email gets none", async () => {
    const first = await signUp(collector)
    for (let i = 0; i < 3; i++) expect((await login(first.email, PASSWORD, `10.7.${i}.1`)).status).toBe(200)
    const moved = `moved-${first.email}`
    await collector.client.patch('/v1/settings/user', { email: moved, currentPassword: PASSWORD }, { token: first.accessToken })
    // someone registers the freed email: the first owner's addresses are not theirs
    const second = await collector.client.post<{ user: { id: string } }>('/v1/auth/register', { email: first.email, password: PASSWORD })
    const [row] = await collector.sql<{ n: number }[]>`select count(*)::int as n from login_known_addresses where user_id = ${second.user.id} and address like '10.7.%'`
    expect(row!.n).toBe(0)
    // and the first owner keeps them under the new email
    const [mine] = await collector.sql<{ n: number }[]>`select count(*)::int as n from login_known_addresses where user_id = ${first.id} and address like '10.7.%'`
    expect(mine!.n).toBe(3)
  })

  it('a try refused at one account from one address does not count for the address either', async () => {
    const victim = await signUp(collector)
    for (let i = 0; i < LOGIN_LIMITS.perEmailAndAddress; i++) expect((await login(victim.email, 'wrong password', '10.8.0.1')).code).toBe('INVALID_CREDENTIALS')
    for (let i = 0; i < LOGIN_LIMITS.perAddress; i++) expect((await login(victim.email, 'wrong password', '10.8.0.1')).code).toBe('RATE_LIMITED')
    const other = await signUp(collector)
    expect((await login(other.email, PASSWORD, '10.8.0.1')).status).toBe(200)
  })

  it('successful logins do not count', async () => {
    const other = await signUp(collector)
    for (let i = 0; i < LOGIN_LIMITS.perEmailAndAddress + 2; i++) expect((await login(other.email, PASSWORD, '10.0.2.1')).status).toBe(200)
  })

  it('per client address, whatever the email', async () => {
    const ip = '192.0.2.7'
    for (let i = 0; i < LOGIN_LIMITS.perAddress; i++) {
      expect((await login(`guess-${i}@example.com`, 'wrong password', ip)).code).toBe('INVALID_CREDENTIALS')
    }
    const limited = await login(user.email.replace('@', '+x@'), 'whatever', ip)
    expect([limited.status, limited.code]).toEqual([429, 'RATE_LIMITED'])
    // the same email from elsewhere is fine
    expect((await login('guess-0@example.com', 'wrong password', '192.0.2.8')).code).toBe('INVALID_CREDENTIALS')
  })

  it('an IPv6 client counts as its /64 at one account and its /56 in all; an IPv4-mapped address as the IPv4 address', async () => {
    // a new address in the same /64 for every try: still one client
    for (let i = 0; i < LOGIN_LIMITS.perAddress; i++) {
      expect((await login(`v6-guess-${i}@example.com`, 'wrong password', `2001:db8:7:7::${(i + 1).toString(16)}`)).code).toBe('INVALID_CREDENTIALS')
    }
    const limited = await login(user.email, PASSWORD, '2001:db8:7:7:ffff:1:2:3')
    expect([limited.status, limited.code]).toEqual([429, 'RATE_LIMITED'])
    // the address total counts a home line's /56: another /64 of it is the same client
    expect((await login(user.email, PASSWORD, '2001:db8:7:8::1')).code).toBe('RATE_LIMITED')
    // the next /56 is someone else
    expect((await login(user.email, PASSWORD, '2001:db8:7:100::1')).status).toBe(200)

    for (let i = 0; i < LOGIN_LIMITS.perAddress; i++) {
      expect((await login(`v4-guess-${i}@example.com`, 'wrong password', i % 2 ? '198.51.100.9' : '::ffff:198.51.100.9')).code).toBe('INVALID_CREDENTIALS')
    }
    expect((await login(user.email, PASSWORD, '::ffff:c633:6409')).code).toBe('RATE_LIMITED')
  })
})

describe('sign-up limits', () => {
  it('per client address: tries past SIGNUP_LIMIT in 15 minutes are 429, refused ones counted too; other addresses unaffected', async () => {
    const limited = await startTestCollector({ env: { TRUST_PROXY: '1', SIGNUP_LIMIT: '3' } })
    try {
      const register = async (email: string, ip: string) => {
        const res = await request(`${limited.url}/v1/auth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
          body: JSON.stringify({ email, password: PASSWORD }),
        })
        const body = (await res.body.json()) as { error?: { code: string } }
        return { status: res.statusCode, code: body.error?.code, retryAfter: res.headers['retry-after'] }
      }
      expect((await register('first@example.com', '198.51.100.1')).status).toBe(201)
      expect((await register('first@example.com', '198.51.100.1')).code).toBe('CONFLICT') // counted too
      expect((await register('second@example.com', '198.51.100.1')).status).toBe(201)
      const refused = await register('third@example.com', '198.51.100.1')
      expect([refused.status, refused.code]).toEqual([429, 'RATE_LIMITED'])
      expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1)
      expect(Number(refused.retryAfter)).toBeLessThanOrEqual(15 * 60)
      const [row] = await limited.sql<{ n: number }[]>`select count(*)::int as n from users where email = 'third@example.com'`
      expect(row!.n).toBe(0)
      expect((await register('third@example.com', '198.51.100.2')).status).toBe(201)

      // an IPv6 client counts as its /56 (a home line), whichever address of it each try comes from
      for (let i = 1; i <= 3; i++) expect((await register(`v6-${i}@example.com`, `2001:db8:9:${i}::${i}`)).status).toBe(201)
      expect((await register('v6-4@example.com', '2001:db8:9:ab:abcd::4')).code).toBe('RATE_LIMITED')
      expect((await register('v6-4@example.com', '2001:db8:9:100::4')).status).toBe(201)
    } finally {
      await limited.close()
    }
  })
})
