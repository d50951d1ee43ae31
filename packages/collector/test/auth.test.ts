import { createHmac } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SignJWT } from 'jose'
import { hash } from '@node-rs/argon2'
import { ARGON2_OPTIONS } from '../src/auth/passwords.js'
import { request } from 'undici'
import type { AuthResult, RefreshResult, User } from '@llmguard/shared'
import { startTestCollector, type TestCollector } from './helpers/collector.js'
import { count, createKey, failure, PASSWORD, setupProject, signUp, type TestUser } from './helpers/accounts.js'

let collector: TestCollector
let admin: TestUser
const ORIGIN = 'https://app.example.com'

beforeAll(async () => {
  collector = await startTestCollector({ env: { CORS_ORIGINS: ORIGIN } })
  admin = await signUp(collector, 'Founder@Example.com')
})
afterAll(() => collector?.close())

const me = (token: string) => collector.client.get<User>('/v1/auth/me', { token })
const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  request(collector.url + path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } })

describe('register', () => {
  it('makes the first user admin, lower-cases the email and returns tokens', async () => {
    const user = await me(admin.accessToken)
    expect(user).toMatchObject({ id: admin.id, email: 'founder@example.com', role: 'admin', name: null })
    expect(new Date(user.createdAt).toISOString()).toBe(user.createdAt)
    const second = await collector.client.post<AuthResult>('/v1/auth/register', { email: 'second@example.com', password: PASSWORD, name: 'Sec' })
    expect(second.user).toMatchObject({ email: 'second@example.com', role: 'user', name: 'Sec' })
    expect(second.tokens.expiresIn).toBe(900)
    expect(second.tokens.refreshToken).toEqual(expect.any(String))
  })

  it('refuses a taken email whatever its case (409) and creates nothing', async () => {
    const before = await count(collector, 'users')
    const err = await failure(collector.client.post('/v1/auth/register', { email: 'FOUNDER@example.COM', password: PASSWORD }))
    expect([err.status, err.code]).toEqual([409, 'CONFLICT'])
    expect(await count(collector, 'users')).toBe(before)
  })

  it.each([
    ['missing email', { password: PASSWORD }, 'body.email'],
    ['missing password', { email: 'a@example.com' }, 'body.password'],
    ['bad email', { email: 'not-an-email', password: PASSWORD }, 'body.email'],
    ['short password', { email: 'a@example.com', password: 'short' }, 'body.password'],
    ['oversize password', { email: 'a@example.com', password: 'x'.repeat(257) }, 'body.password'],
    ['oversize email', { email: `${'a'.repeat(250)}@example.com`, password: PASSWORD }, 'body.email'],
    ['oversize name', { email: 'a@example.com', password: PASSWORD, name: 'n'.repeat(101) }, 'body.name'],
    ['wrong type', { email: 42, password: PASSWORD }, 'body.email'],
    ['unknown field', { email: 'a@example.com', password: PASSWORD, role: 'admin' }, 'body'],
    ['no body', undefined, 'body'],
  ])('400 on %s, nothing stored', async (_name, body, path) => {
    const before = await count(collector, 'users')
    const err = await failure(collector.client.post('/v1/auth/register', body))
    expect([err.status, err.code]).toEqual([400, 'VALIDATION_ERROR'])
    expect((err.details?.issues as { path: string }[]).map((i) => i.path)).toContain(path)
    expect(await count(collector, 'users')).toBe(before)
  })

  it('400 MALFORMED_JSON on a broken body', async () => {
    const res = await post('/v1/auth/register', '{"email": ')
    expect(res.statusCode).toBe(400)
    expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('MALFORMED_JSON')
  })

  it('stores an argon2id hash with the OWASP parameters, never the password', async () => {
    const [row] = await collector.sql<{ password_hash: string }[]>`select password_hash from users where id = ${admin.id}`
    expect(row!.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
  })
})

describe('login', () => {
  it('signs in with any case of the email', async () => {
    const result = await collector.client.post<AuthResult>('/v1/auth/login', { email: 'FOUNDER@example.com', password: PASSWORD })
    expect(result.user.id).toBe(admin.id)
    expect((await me(result.tokens.accessToken)).email).toBe('founder@example.com')
  })

  it('takes a password with accents typed composed or decomposed as the same password, old hashes included', async () => {
    const composed = 'Passwört-café1'.normalize('NFC')
    const decomposed = composed.normalize('NFD')
    expect(decomposed).not.toBe(composed)
    const user = await collector.client.post<AuthResult>('/v1/auth/register', { email: 'accents@example.com', password: composed })
    for (const password of [composed, decomposed]) {
      const res = await post('/v1/auth/login', { email: 'accents@example.com', password })
      expect(res.statusCode, password === composed ? 'NFC' : 'NFD').toBe(200)
      await res.body.text()
    }
    const wrong = await post('/v1/auth/login', { email: 'accents@example.com', password: 'Passwort-cafe1' })
    expect(wrong.statusCode).toBe(401)
    await wrong.body.text()
    // an account whose hash was made from the decomposed text as typed, before normalizing
    await collector.sql`update users set password_hash = ${await hash(decomposed, ARGON2_OPTIONS)} where id = ${user.user.id}`
    const legacy = await post('/v1/auth/login', { email: 'accents@example.com', password: decomposed })
    expect(legacy.statusCode).toBe(200)
    await legacy.body.text()
  })

  it('answers a wrong password and an unknown email alike, in similar time', async () => {
    const timed = async (email: string) => {
      const started = performance.now()
      const err = await failure(collector.client.post('/v1/auth/login', { email, password: 'wrong password' }))
      expect([err.status, err.code, err.message]).toEqual([401, 'INVALID_CREDENTIALS', 'invalid email or password'])
      return performance.now() - started
    }
    const known: number[] = []
    const unknown: number[] = []
    for (let i = 0; i < 5; i++) {
      known.push(await timed('second@example.com'))
      unknown.push(await timed(`nobody-${i}@example.com`))
    }
    // Both pay one argon2 verification (~15–50 ms); without the dummy hash the unknown one takes
    // ~1 ms. The fastest of each is compared: load on a shared machine only ever adds time.
    const fastest = (xs: number[]) => Math.min(...xs)
    expect(fastest(unknown)).toBeGreaterThan(fastest(known) * 0.5)
    expect(fastest(unknown)).toBeGreaterThan(5)
  })

  it('400 on missing or mistyped fields', async () => {
    for (const body of [{ email: 'a@example.com' }, { email: 'a@example.com', password: 7 }, { password: 'x' }]) {
      const err = await failure(collector.client.post('/v1/auth/login', body))
      expect([err.status, err.code]).toEqual([400, 'VALIDATION_ERROR'])
    }
  })
})

describe('access tokens', () => {
  const secret = () => new TextEncoder().encode(collector.secrets.jwtSecret)
  const claims = () => ({ email: admin.email, role: 'admin' })
  const sign = (mutate: (jwt: SignJWT) => SignJWT, key = secret(), alg = 'HS256') =>
    mutate(new SignJWT(claims()).setProtectedHeader({ alg }).setSubject(admin.id).setIssuer('llmguard').setAudience('llmguard-api').setIssuedAt()).sign(key)

  it('accepts a well-formed token of our own', async () => {
    const token = await sign((j) => j.setExpirationTime('5m'))
    expect((await me(token)).id).toBe(admin.id)
  })

  it('refuses a missing, malformed or non-bearer credential (401)', async () => {
    for (const headers of [{} as Record<string, string>, { authorization: 'Basic abc' }, { authorization: 'Bearer' }, { authorization: 'Bearer not.a.jwt' }]) {
      const err = await failure(collector.client.get('/v1/auth/me', { headers }))
      expect([err.status, err.code]).toEqual([401, 'UNAUTHORIZED'])
    }
  })

  it('TOKEN_EXPIRED on an expired token', async () => {
    const token = await sign((j) => j.setIssuedAt(Math.floor(Date.now() / 1000) - 3600).setExpirationTime(Math.floor(Date.now() / 1000) - 60))
    const err = await failure(me(token))
    expect([err.status, err.code]).toEqual([401, 'TOKEN_EXPIRED'])
  })

  it('401 on a tampered signature, another secret, another algorithm, alg none, wrong aud or iss', async () => {
    const good = await sign((j) => j.setExpirationTime('5m'))
    const [h, p, s] = good.split('.')
    const flipped = `${h}.${p}.${s!.slice(0, -2)}${s!.endsWith('AA') ? 'BB' : 'AA'}`
    const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), role: 'admin', sub: '00000000-0000-4000-8000-000000000000' })).toString('base64url')
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`
    const hs512 = await sign((j) => j.setExpirationTime('5m'), secret(), 'HS512')
    const otherSecret = await sign((j) => j.setExpirationTime('5m'), new TextEncoder().encode('x'.repeat(32)))
    const wrongAud = await sign((j) => j.setAudience('someone-else').setExpirationTime('5m'))
    const wrongIss = await sign((j) => j.setIssuer('evil').setExpirationTime('5m'))
    const refreshAsAccess = admin.refreshToken
    // HMAC over header.payload made by hand with the right secret but no exp claim at all still verifies: not a vulnerability,
    // but a missing sub must be refused
    const noSub = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).setIssuer('llmguard').setAudience('llmguard-api').setExpirationTime('5m').sign(secret())
    for (const token of [flipped, `${h}.${forgedPayload}.${s}`, none, hs512, otherSecret, wrongAud, wrongIss, refreshAsAccess, noSub]) {
      const err = await failure(me(token))
      expect([err.status, err.code]).toEqual([401, 'UNAUTHORIZED'])
    }
  })

  it('refuses an API key on a user route (401)', async () => {
    const { key } = await setupProject(collector, admin)
    const err = await failure(me(key.key))
    expect([err.status, err.code]).toEqual([401, 'UNAUTHORIZED'])
  })

  it('keeps our token shape: HS256, iss/aud, claims sub/email/role, 15 minutes', async () => {
    const [header, payload] = admin.accessToken.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()))
    expect(header.alg).toBe('HS256')
    expect(payload).toMatchObject({ sub: admin.id, email: 'founder@example.com', role: 'admin', iss: 'llmguard', aud: 'llmguard-api' })
    expect(payload.exp - payload.iat).toBe(900)
    // sanity: the signature really is HMAC-SHA256 of the secret
    const [h, p, s] = admin.accessToken.split('.')
    expect(createHmac('sha256', collector.secrets.jwtSecret).update(`${h}.${p}`).digest('base64url')).toBe(s)
  })
})

describe('refresh and logout', () => {
  const refresh = (refreshToken: string) => collector.client.post<RefreshResult>('/v1/auth/refresh', { refreshToken })

  it('rotates on every use; a reused token revokes the whole family', async () => {
    const user = await signUp(collector)
    const a = user.refreshToken
    const b = (await refresh(a)).tokens
    expect(b.refreshToken).not.toBe(a)
    expect((await me(b.accessToken)).id).toBe(user.id)
    const reuse = await failure(refresh(a))
    expect([reuse.status, reuse.code]).toEqual([401, 'TOKEN_REUSED'])
    // the legitimate chain stops too: whoever holds B is as suspect as whoever replayed A
    const afterwards = await failure(refresh(b.refreshToken!))
    expect([afterwards.status, afterwards.code]).toEqual([401, 'UNAUTHORIZED'])
    // and so do the access tokens issued in it, at once
    const revoked = await failure(me(b.accessToken))
    expect([revoked.status, revoked.code]).toEqual([401, 'UNAUTHORIZED'])
    // another session of the same user is untouched
    const other = await collector.client.post<AuthResult>('/v1/auth/login', { email: user.email, password: PASSWORD })
    expect((await refresh(other.tokens.refreshToken!)).tokens.accessToken).toEqual(expect.any(String))
  })

  it('a family with a revoked token is over: a successor the revocation missed cannot refresh', async () => {
    const user = await signUp(collector)
    const next = (await refresh(user.refreshToken)).tokens
    // what a logout racing that refresh leaves: the rows it saw revoked, the successor not
    await collector.sql`
      update refresh_tokens set revoked_at = now()
      where family_id = (select family_id from refresh_tokens where user_id = ${user.id} and rotated_at is not null) and rotated_at is not null`
    const err = await failure(refresh(next.refreshToken!))
    expect([err.status, err.code]).toEqual([401, 'UNAUTHORIZED'])
  })

  it('a logout racing a refresh of the same session leaves no token that still refreshes', async () => {
    const users = await Promise.all(Array.from({ length: 20 }, () => signUp(collector)))
    const outcomes = await Promise.all(
      users.map(async (u) => {
        const [refreshed] = await Promise.allSettled([refresh(u.refreshToken), post('/v1/auth/logout', { refreshToken: u.refreshToken })])
        if (refreshed.status !== 'fulfilled') return 'refresh lost'
        return (await refresh(refreshed.value.tokens.refreshToken!).then(() => 'still refreshes', () => 'ended'))
      }),
    )
    expect(outcomes.filter((o) => o === 'still refreshes')).toEqual([])
  })

  it('concurrent refreshes with one token: exactly one wins', async () => {
    const user = await signUp(collector)
    const results = await Promise.allSettled([refresh(user.refreshToken), refresh(user.refreshToken)])
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
  })

  it('logout revokes the session (204) and its access tokens at once; logging out again is harmless', async () => {
    const user = await signUp(collector)
    const rotated = (await refresh(user.refreshToken)).tokens
    const other = await collector.client.post<AuthResult>('/v1/auth/login', { email: user.email, password: PASSWORD })
    expect((await me(user.accessToken)).id).toBe(user.id)
    const res = await post('/v1/auth/logout', { refreshToken: rotated.refreshToken })
    expect(res.statusCode).toBe(204)
    const err = await failure(refresh(rotated.refreshToken!))
    expect([err.status, err.code]).toEqual([401, 'UNAUTHORIZED'])
    // every access token of the session, before and after its rotation, stops working
    for (const token of [user.accessToken, rotated.accessToken]) {
      const ended = await failure(me(token))
      expect([ended.status, ended.code]).toEqual([401, 'UNAUTHORIZED'])
      expect(ended.message).toMatch(/session has ended/)
    }
    // the user's other session is untouched
    expect((await me(other.tokens.accessToken)).id).toBe(user.id)
    expect((await post('/v1/auth/logout', { refreshToken: rotated.refreshToken })).statusCode).toBe(204)
  })

  it('an access token without a session (from a collector before the claim) still works until it expires', async () => {
    const user = await signUp(collector)
    const legacy = await new SignJWT({ email: user.email, role: 'user' }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(user.id)
      .setIssuer('llmguard').setAudience('llmguard-api').setIssuedAt().setExpirationTime('15m').sign(new TextEncoder().encode(collector.secrets.jwtSecret))
    expect((await me(legacy)).id).toBe(user.id)
  })

  it('401 on garbage, an access token or a token signed with another secret; 400 on a missing token', async () => {
    const forged = await new SignJWT({ fam: admin.id }).setProtectedHeader({ alg: 'HS256' }).setSubject(admin.id).setJti(admin.id)
      .setIssuer('llmguard').setAudience('llmguard-refresh').setExpirationTime('1h').sign(new TextEncoder().encode(collector.secrets.jwtSecret))
    for (const token of ['garbage', admin.accessToken, forged]) {
      const err = await failure(refresh(token))
      expect([err.status, err.code]).toEqual([401, 'UNAUTHORIZED'])
    }
    for (const body of [{}, { refreshToken: 5 }, { refreshToken: '' }, { refreshToken: 'x'.repeat(5000) }]) {
      const err = await failure(collector.client.post('/v1/auth/refresh', body))
      expect([err.status, err.code]).toEqual([400, 'VALIDATION_ERROR'])
    }
  })

  it('an expired refresh token → TOKEN_EXPIRED', async () => {
    const user = await signUp(collector)
    const hash = createHmac('sha256', collector.secrets.refreshTokenSecret).update(user.refreshToken).digest('hex')
    await collector.sql`update refresh_tokens set expires_at = now() - interval '1 second' where token_hash = ${hash}`
    const err = await failure(refresh(user.refreshToken))
    expect([err.status, err.code]).toEqual([401, 'TOKEN_EXPIRED'])
  })

  it('stores refresh tokens only as hashes', async () => {
    const rows = await collector.sql<{ token_hash: string }[]>`select token_hash from refresh_tokens`
    expect(rows.length).toBeGreaterThan(3)
    for (const row of rows) expect(row.token_hash).toMatch(/^[0-9a-f]{64}$/)
  })
})

describe('cookie mode', () => {
  const cookieOf = (setCookie: string | string[] | undefined) => {
    const value = Array.isArray(setCookie) ? setCookie[0]! : setCookie!
    return { header: value, token: /^llmguard_refresh=([^;]*)/.exec(value)![1]! }
  }

  it('puts the refresh token in an HttpOnly Strict cookie, honoured only from a listed origin', async () => {
    const login = await post('/v1/auth/login', { email: admin.email, password: PASSWORD, useCookies: true })
    expect(login.statusCode).toBe(200)
    const body = (await login.body.json()) as AuthResult
    expect(body.tokens.refreshToken).toBeUndefined()
    const cookie = cookieOf(login.headers['set-cookie'])
    expect(cookie.header).toMatch(/HttpOnly/)
    expect(cookie.header).toMatch(/Secure/)
    expect(cookie.header).toMatch(/SameSite=Strict/)
    expect(cookie.header).toMatch(/Path=\/v1\/auth/)
    expect(cookie.header).toMatch(/Max-Age=604800/)

    for (const origin of [undefined, 'https://evil.example.com']) {
      const res = await post('/v1/auth/refresh', {}, { cookie: `llmguard_refresh=${cookie.token}`, ...(origin ? { origin } : {}) })
      expect(res.statusCode).toBe(403)
      expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN')
    }
    const refreshed = await post('/v1/auth/refresh', undefined, { cookie: `other=1; llmguard_refresh=${cookie.token}`, origin: ORIGIN })
    expect(refreshed.statusCode).toBe(200)
    const next = cookieOf(refreshed.headers['set-cookie'])
    expect(next.token).not.toBe(cookie.token)
    expect(((await refreshed.body.json()) as RefreshResult).tokens.refreshToken).toBeUndefined()

    const out = await post('/v1/auth/logout', '', { cookie: `llmguard_refresh=${next.token}`, origin: ORIGIN })
    expect(out.statusCode).toBe(204)
    expect(cookieOf(out.headers['set-cookie']).header).toMatch(/Max-Age=0/)
    const again = await post('/v1/auth/refresh', {}, { cookie: `llmguard_refresh=${next.token}`, origin: ORIGIN })
    expect(again.statusCode).toBe(401)
  })

  it('register with useCookies sets the cookie too', async () => {
    const res = await post('/v1/auth/register', { email: 'cookie@example.com', password: PASSWORD, useCookies: true })
    expect(res.statusCode).toBe(201)
    expect(cookieOf(res.headers['set-cookie']).token.length).toBeGreaterThan(20)
    expect(((await res.body.json()) as AuthResult).tokens.refreshToken).toBeUndefined()
  })
})

describe('signup switch', () => {
  it('ALLOW_SIGNUP=false lets only the first user in; concurrent first sign-ups make one admin', async () => {
    const closed = await startTestCollector({ env: { ALLOW_SIGNUP: 'false' } })
    try {
      const results = await Promise.allSettled(
        ['one@example.com', 'two@example.com'].map((email) => closed.client.post<AuthResult>('/v1/auth/register', { email, password: PASSWORD })),
      )
      const ok = results.filter((r): r is PromiseFulfilledResult<AuthResult> => r.status === 'fulfilled')
      expect(ok).toHaveLength(1)
      expect(ok[0]!.value.user.role).toBe('admin')
      const refused = await failure(closed.client.post('/v1/auth/register', { email: 'three@example.com', password: PASSWORD }))
      expect([refused.status, refused.code]).toEqual([403, 'SIGNUP_CLOSED'])
      expect(await count(closed, 'users')).toBe(1)

      // refusing costs no password hash: a flood of sign-ups to a closed instance (or for a
      // taken email) must not tie up the CPU. Measured against one login, which always hashes:
      // 20 refusals take a fraction of what 20 hashes would (20 logins' worth)
      const admin = ok[0]!.value.user.email
      let t = performance.now()
      await closed.client.post('/v1/auth/login', { email: admin, password: PASSWORD })
      const oneHash = performance.now() - t
      t = performance.now()
      for (let i = 0; i < 20; i++) {
        const again = await failure(closed.client.post('/v1/auth/register', { email: i % 2 ? admin : `flood${i}@example.com`, password: PASSWORD }))
        expect(again.code).toBe('SIGNUP_CLOSED')
      }
      expect(performance.now() - t).toBeLessThan(5 * oneHash)
    } finally {
      await closed.close()
    }
  })

  it('a sign-up for a taken email is refused before the password is hashed', async () => {
    const taken = await signUp(collector)
    let t = performance.now()
    await collector.client.post('/v1/auth/login', { email: taken.email, password: PASSWORD })
    const oneHash = performance.now() - t
    t = performance.now()
    for (let i = 0; i < 20; i++) {
      const again = await failure(collector.client.post('/v1/auth/register', { email: taken.email.toUpperCase(), password: PASSWORD }))
      expect([again.status, again.code]).toEqual([409, 'CONFLICT'])
    }
    expect(performance.now() - t).toBeLessThan(5 * oneHash)
  })
})

describe('a user deleted from the database by hand', () => {
  it('its unexpired access tokens are refused on every route that takes one (401), never a 500; its API keys went with it', async () => {
    const { user, project, key } = await setupProject(collector)
    const unused = await createKey(collector, user, project.id)
    // an API key verified (and cached) before the deletion
    expect((await collector.client.send('GET', '/v1/llm/policy', { token: key.key })).status).toBe(200)
    const sessionless = await new SignJWT({ email: user.email, role: 'user' }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(user.id)
      .setIssuer('llmguard').setAudience('llmguard-api').setIssuedAt().setExpirationTime('15m').sign(new TextEncoder().encode(collector.secrets.jwtSecret))
    await collector.sql`delete from users where id = ${user.id}`

    type Operation = { security: Record<string, string[]>[] }
    const doc = await collector.client.get<{ paths: Record<string, Record<string, Operation>> }>('/openapi.json')
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).filter(([, op]) => op.security.some((s) => 'bearerJwt' in s)).map(([method]) => ({ method: method.toUpperCase(), path })))
    // every family: auth, projects, keys, settings, logs, metrics, incidents, remediations, billing, admin
    expect(routes.length).toBeGreaterThan(25)
    const answers: string[] = []
    for (const token of [user.accessToken, sessionless]) {
      for (const { method, path } of routes) {
        const url = path.replace('{id}', project.id).replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000')
        const hasBody = method !== 'GET' && method !== 'DELETE'
        const res = await request(collector.url + url, {
          method: method as 'GET',
          headers: { authorization: `Bearer ${token}`, ...(hasBody ? { 'content-type': 'application/json' } : {}) },
          body: hasBody ? '{"name":"x","email":"x@example.com","plan":"pro","status":"resolved"}' : undefined,
        })
        const body = (await res.body.json()) as { error?: { code: string; message: string } }
        answers.push(`${method} ${path} ${res.statusCode} ${body.error?.code}`)
        if (res.statusCode === 401) expect(body.error!.message).toMatch(/no longer exists/)
      }
    }
    expect(answers.filter((a) => !a.endsWith(' 401 UNAUTHORIZED'))).toEqual([])
    expect(await count(collector, `projects where id = '${project.id}'`)).toBe(0)

    // API keys: deleted with the user's projects. One verified since (cached on this instance
    // up to a minute, as deletions outside the API are never announced) answers no 5xx either
    for (const [token, cached] of [[unused.key, false], [key.key, true]] as const) {
      for (const [method, path, body] of [['GET', '/v1/llm/policy', undefined], ['POST', '/v1/llm/requests', { prompt: 'p', model: 'gpt-4o', latency: 1 }], ['GET', `/v1/projects/${project.id}/logs`, undefined]] as const) {
        const res = await request(collector.url + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) })
        const answer = (await res.body.json()) as { error?: { code: string } }
        if (cached) expect(res.statusCode).toBeLessThan(500)
        else expect([path, res.statusCode, answer.error?.code]).toEqual([path, 403, 'INVALID_API_KEY'])
      }
    }
  })
})
