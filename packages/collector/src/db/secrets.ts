import { randomBytes } from 'node:crypto'
import type { Secrets } from '../config.js'
import type { Sql } from './connect.js'

const NAMES = { jwtSecret: 'jwt_secret', refreshTokenSecret: 'refresh_token_secret', apiKeyPepper: 'api_key_pepper' } as const

/**
 * Fills in secrets the environment did not give: generated once and stored in the database,
 * so every instance on one database signs and hashes alike and a first start needs no setup.
 * (Production refuses to start without them; see config.ts.)
 */
export async function resolveSecrets(sql: Sql, given: Partial<Secrets>): Promise<Secrets> {
  const out = { ...given } as Secrets
  for (const [field, name] of Object.entries(NAMES) as [keyof Secrets, string][]) {
    if (out[field]) continue
    const candidate = randomBytes(32).toString('base64url')
    await sql`insert into instance_secrets (name, value) values (${name}, ${candidate}) on conflict (name) do nothing`
    const [row] = await sql<{ value: string }[]>`select value from instance_secrets where name = ${name}`
    out[field] = row!.value
  }
  return out
}
