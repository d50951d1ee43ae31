// The few collector API calls the seed and benchmark scripts make, over plain fetch.

export class ApiError extends Error {
  constructor(method, path, status, body) {
    super(`${method} ${path} → ${status}: ${body?.error?.code ?? ''} ${body?.error?.message ?? JSON.stringify(body)}`.trim())
    this.status = status
    this.code = body?.error?.code
  }
}

export async function api(base, method, path, { token, body } = {}) {
  const headers = { accept: 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(new URL(path, base), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  const json = text ? JSON.parse(text) : undefined
  if (!res.ok) throw new ApiError(method, path, res.status, json)
  return json
}

/**
 * Logs in, or registers the account when there is none. Returns `{ accessToken, created }`.
 * Login first: a run against an existing account must not spend the address's sign-up tries
 * (SIGNUP_LIMIT), and a 409 from registering counts as one.
 */
export async function signIn(base, email, password) {
  try {
    const out = await api(base, 'POST', '/v1/auth/login', { body: { email, password } })
    return { accessToken: out.tokens.accessToken, created: false }
  } catch (err) {
    if (err.code !== 'INVALID_CREDENTIALS') throw err
    const out = await api(base, 'POST', '/v1/auth/register', { body: { email, password } })
    return { accessToken: out.tokens.accessToken, created: true }
  }
}

/**
 * A project and a new API key for it. With `reuse`, the account's project of that name (the
 * newest, as the CLI picks) when it has one: seeding again adds records, not projects.
 */
export async function createProjectWithKey(base, accessToken, name, { reuse = false } = {}) {
  const mine = reuse ? await api(base, 'GET', '/v1/projects?limit=100', { token: accessToken }) : undefined
  const existing = mine?.items.find((p) => p.name === name)
  const project = existing ?? (await api(base, 'POST', '/v1/projects', { token: accessToken, body: { name } }))
  project.reused = Boolean(existing)
  const { key } = await api(base, 'POST', `/v1/projects/${project.id}/keys`, { token: accessToken, body: { name: `${name} key` } })
  return { project, key }
}

/**
 * Raises the project's per-key rate limit so a benchmark measures the collector, not the limiter.
 * Returns a line saying what was done (the settings API may not exist on an older collector).
 */
export async function raiseRateLimit(base, accessToken, projectId, rateLimit = 1_000_000) {
  try {
    await api(base, 'PATCH', `/v1/projects/${projectId}/settings`, { token: accessToken, body: { rateLimit } })
    return `project rate limit raised to ${rateLimit.toLocaleString('en-US')} requests/min for the benchmark`
  } catch (err) {
    return `project rate limit left at its default (settings API answered: ${err.message})`
  }
}
