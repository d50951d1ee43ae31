import { accessSync, constants } from 'node:fs'
import { z } from 'zod'

/** Raised when the environment is invalid; the message names every offending variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

const bool = (fallback: boolean) =>
  z
    .preprocess(
      (v) => (typeof v === 'string' ? v.trim().toLowerCase() : v),
      z.enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'], { error: 'expected true or false (also 1/0, yes/no, on/off; any case)' }).optional(),
    )
    .transform((v) => (v === undefined ? fallback : ['true', '1', 'yes', 'on'].includes(v)))

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v))

const secret = optionalString.refine((v) => v === undefined || v.length >= 32, {
  message: 'must be at least 32 characters',
})

const url = (protocols: string[]) =>
  optionalString.refine(
    (v) => {
      if (v === undefined) return true
      try {
        return protocols.includes(new URL(v).protocol)
      } catch {
        return false
      }
    },
    { message: `must be a URL (${protocols.join(' or ')})` },
  )

/** The origin a browser would send for `entry` (scheme://host[:port], normalized), or undefined when it is not one. */
function originOf(entry: string): string | undefined {
  if (!/^https?:\/\/[^/\s]+\/?$/i.test(entry)) return undefined
  try {
    const u = new URL(entry)
    if (u.username || u.password || u.search || u.hash || u.pathname !== '/') return undefined
    return u.origin
  } catch {
    return undefined
  }
}

/**
 * A whole number written in decimal digits: Number() would also read `0x10` as 16, `1e3` as 1000
 * and `' '` as 0, quietly, which no one writing a setting means.
 */
const wholeNumber = (error = 'must be a whole number') =>
  z.preprocess((v) => (typeof v === 'string' && /^\s*\d{1,15}\s*$/.test(v) ? Number(v) : v), z.number({ error }).int(error))

const port = wholeNumber('must be a port number').pipe(z.number().min(0, 'must be 0–65535').max(65535, 'must be 0–65535'))

/** The environment, as the collector reads it. Every variable is documented in docs/self-hosting.md. */
export const envSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    PORT: port.default(3000),
    HOST: z.string().default('0.0.0.0'),
    DATABASE_URL: url(['postgres:', 'postgresql:']).refine(
      (v) => {
        if (v === undefined) return true
        // the driver decodes the user and password: a bare % (one not starting %XX) fails there
        try {
          const u = new URL(v)
          decodeURIComponent(u.username)
          decodeURIComponent(u.password)
          return true
        } catch {
          return false
        }
      },
      { message: 'the user or password holds a % that is not an escape: write % as %25 (and other special characters percent-encoded)' },
    ),
    DATABASE_POOL_SIZE: wholeNumber().pipe(z.number().min(1).max(100)).default(10),
    DATABASE_PREPARE: bool(true),
    LLMGUARD_DATA_DIR: z.string().min(1).default('./.llmguard'),
    JWT_SECRET: secret,
    REFRESH_TOKEN_SECRET: secret,
    API_KEY_PEPPER: secret,
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    CORS_ORIGINS: z
      .string()
      .default('')
      .transform((v, ctx) => {
        const list = v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
        // as a browser sends its Origin: lower-case host, no default port. An entry with a path,
        // query, user or password could never equal one, and is refused rather than never matching
        const origins: string[] = []
        for (const entry of list) {
          const origin = entry === '*' ? '*' : originOf(entry)
          if (origin === undefined) {
            ctx.addIssue({ code: 'custom', message: `"${entry.slice(0, 100)}" is not an origin: give scheme, host and port only, like https://app.example.com (or *)` })
            return z.NEVER
          }
          origins.push(origin)
        }
        return origins
      }),
    TRUST_PROXY: z
      .string()
      .optional()
      .transform((raw, ctx) => {
        // booleans as ALLOW_SIGNUP takes them (any case), or a number of hops
        const v = raw?.trim().toLowerCase()
        if (v === undefined || v === '' || ['false', '0', 'no', 'off'].includes(v)) return 0
        if (['true', 'yes', 'on'].includes(v)) return 1
        const hops = /^\d{1,2}$/.test(v) ? Number(v) : Number.NaN
        if (!Number.isInteger(hops) || hops < 0 || hops > 10) {
          ctx.addIssue({ code: 'custom', message: 'must be true, false or a number of proxy hops (0–10)' })
          return z.NEVER
        }
        return hops
      }),
    TLS_CERT_FILE: optionalString,
    TLS_KEY_FILE: optionalString,
    OPENAI_API_KEY: optionalString,
    OPENAI_BASE_URL: url(['http:', 'https:']),
    RCA_MODEL: z.string().min(1).default('gpt-4'),
    RCA_DAILY_LIMIT: wholeNumber().pipe(z.number().min(0).max(1_000_000)).default(100),
    STRIPE_SECRET_KEY: optionalString,
    STRIPE_PRICE_PRO: optionalString,
    STRIPE_WEBHOOK_SECRET: optionalString,
    STRIPE_API_BASE: url(['http:', 'https:']),
    DATADOG_WEBHOOK_SECRET: optionalString,
    ALLOW_SIGNUP: bool(true),
    SIGNUP_LIMIT: wholeNumber().pipe(z.number().min(1).max(1_000_000)).default(20),
    PLAN_LIMITS: bool(true),
    SHUTDOWN_TIMEOUT_MS: wholeNumber().pipe(z.number().min(100).max(120_000)).default(5_000),
    SEARCH_INDEX_LAG_MS: wholeNumber().pipe(z.number().min(0).max(3_600_000)).default(60_000),
  })
  .superRefine((env, ctx) => {
    for (const name of ['TLS_CERT_FILE', 'TLS_KEY_FILE'] as const) {
      const file = env[name]
      if (file === undefined) continue
      try {
        accessSync(file, constants.R_OK)
      } catch {
        ctx.addIssue({ code: 'custom', path: [name], message: `cannot read ${file}` })
      }
    }
    if ((env.TLS_CERT_FILE === undefined) !== (env.TLS_KEY_FILE === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [env.TLS_CERT_FILE ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE'],
        message: 'TLS_CERT_FILE and TLS_KEY_FILE must be set together',
      })
    }
    if (env.NODE_ENV === 'production') {
      for (const name of ['DATABASE_URL', 'JWT_SECRET', 'REFRESH_TOKEN_SECRET', 'API_KEY_PEPPER'] as const) {
        if (env[name] === undefined) {
          ctx.addIssue({ code: 'custom', path: [name], message: 'is required when NODE_ENV=production' })
        }
      }
    }
  })

export type Env = z.infer<typeof envSchema>

export interface Secrets {
  jwtSecret: string
  refreshTokenSecret: string
  apiKeyPepper: string
}

export interface Config {
  env: Env['NODE_ENV']
  production: boolean
  port: number
  host: string
  database: { url?: string; poolSize: number; prepare: boolean }
  dataDir: string
  /** Secrets given in the environment; missing ones are generated once and kept in the database. */
  secrets: Partial<Secrets>
  logLevel: Env['LOG_LEVEL']
  corsOrigins: string[]
  trustProxyHops: number
  tls?: { certFile: string; keyFile: string }
  /** rcaDailyLimit: OpenAI analyses per user per 24 h (past it, the heuristic one). */
  openai: { apiKey?: string; baseUrl?: string; rcaModel: string; rcaDailyLimit: number }
  stripe: { secretKey?: string; pricePro?: string; webhookSecret?: string; apiBase?: string }
  datadog: { webhookSecret?: string }
  allowSignup: boolean
  /** Registrations (tried, also refused ones) per client address per 15 minutes. */
  signupLimit: number
  planLimits: boolean
  shutdownTimeoutMs: number
  /** How far behind the present the search indexer stays (logs/indexer.ts explains the 60 s). */
  searchIndexLagMs: number
  /** Largest accepted request body, after decompression. */
  bodyLimitBytes: number
}

export const BODY_LIMIT_BYTES = 5 * 1024 * 1024

/** Reads and validates the environment; throws ConfigError naming each bad variable. */
export function loadConfig(raw: NodeJS.ProcessEnv | Record<string, string | undefined> = process.env): Config {
  // An empty value (`PORT=` in an .env file) means "not set": the default applies.
  const source = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined && v.trim() !== ''))
  const parsed = envSchema.safeParse(source)
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = issue.path.join('.') || 'environment'
      const value = issue.path.length ? source[String(issue.path[0])] : undefined
      const shown = value === undefined || /SECRET|PEPPER|KEY|URL/.test(name) ? '' : ` (got "${value}")`
      return `  ${name}: ${issue.message}${shown}`
    })
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`)
  }
  const e = parsed.data
  return {
    env: e.NODE_ENV,
    production: e.NODE_ENV === 'production',
    port: e.PORT,
    host: e.HOST,
    database: { url: e.DATABASE_URL, poolSize: e.DATABASE_POOL_SIZE, prepare: e.DATABASE_PREPARE },
    dataDir: e.LLMGUARD_DATA_DIR,
    secrets: {
      jwtSecret: e.JWT_SECRET,
      refreshTokenSecret: e.REFRESH_TOKEN_SECRET,
      apiKeyPepper: e.API_KEY_PEPPER,
    },
    logLevel: e.LOG_LEVEL,
    corsOrigins: e.CORS_ORIGINS,
    trustProxyHops: e.TRUST_PROXY,
    tls: e.TLS_CERT_FILE && e.TLS_KEY_FILE ? { certFile: e.TLS_CERT_FILE, keyFile: e.TLS_KEY_FILE } : undefined,
    openai: { apiKey: e.OPENAI_API_KEY, baseUrl: e.OPENAI_BASE_URL, rcaModel: e.RCA_MODEL, rcaDailyLimit: e.RCA_DAILY_LIMIT },
    stripe: {
      secretKey: e.STRIPE_SECRET_KEY,
      pricePro: e.STRIPE_PRICE_PRO,
      webhookSecret: e.STRIPE_WEBHOOK_SECRET,
      apiBase: e.STRIPE_API_BASE,
    },
    datadog: { webhookSecret: e.DATADOG_WEBHOOK_SECRET },
    allowSignup: e.ALLOW_SIGNUP,
    signupLimit: e.SIGNUP_LIMIT,
    planLimits: e.PLAN_LIMITS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    searchIndexLagMs: e.SEARCH_INDEX_LAG_MS,
    bodyLimitBytes: BODY_LIMIT_BYTES,
  }
}
