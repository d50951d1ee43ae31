import { connect } from 'node:net'
import type { Sql } from './connect.js'

/**
 * The start-up check of DATABASE_URL: whether its host can be reached at all, and then whether
 * what answers there is PostgreSQL. postgres.js cannot tell these apart: its connect timeout
 * runs until the server's first answer, so a host that drops the packets and a port that
 * accepts and stays silent both end as the same CONNECT_TIMEOUT.
 */

/** How long connecting, and then PostgreSQL's start-up handshake, may take by default. */
export const DATABASE_CONNECT_MS = 10_000

/** Errors of reaching a server, as Node and postgres.js name them. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'CONNECT_TIMEOUT'])

/**
 * The one host and port a DATABASE_URL names, as postgres.js reads them; undefined when it names
 * several hosts, a Unix socket or none (postgres.js then takes PGHOST), which are not probed.
 */
export function addressOf(url: string): { host: string; port: number } | undefined {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return undefined // several hosts (h1,h2) do not parse as one URL
  }
  const host = decodeURIComponent(u.hostname).replace(/^\[(.*)\]$/, '$1')
  if (!host || host.includes('/')) return undefined
  return { host, port: u.port ? Number(u.port) : 5432 }
}

/** ` at host:port` of a database URL, never its credentials. */
export function whereOf(url: string): string {
  try {
    const u = new URL(url)
    return ` at ${u.hostname}:${u.port || '5432'}`
  } catch {
    // validated by the config already; without it the variable's name still says which
    return ''
  }
}

const shown = (ms: number) => (ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`)

/**
 * A database that cannot be reached says so and where (host and port of DATABASE_URL, never
 * its credentials): a bare "connect ECONNREFUSED 10.0.0.5:5432" does not say it was the
 * database. Other errors pass through unchanged.
 */
export function unreachableDatabase(err: unknown, url: string): unknown {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string' || !UNREACHABLE.has(code)) return err
  return new Error(`cannot reach the database${whereOf(url)} (DATABASE_URL): ${(err as Error).message}`, { cause: err })
}

/**
 * Opens and closes one TCP connection to host:port within `ms`. Rejects with Node's error
 * (ECONNREFUSED, ENOTFOUND, …) or, when nothing answers at all, an ETIMEDOUT of its own.
 */
export function probeTcp(host: string, port: number, ms: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const socket = connect({ host, port })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(Object.assign(new Error(`connect timed out after ${shown(ms)} (nothing answered: a wrong address, or a firewall dropping the packets?)`), { code: 'ETIMEDOUT' }))
    }, ms)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.destroy()
      resolve()
    })
    socket.once('error', (err) => {
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    })
  })
}

export interface FirstAnswerTimeouts {
  /** For the TCP connect, and for PostgreSQL's handshake once connected (postgres.js's connect_timeout). */
  connectMs: number
  /** For the first query's answer in all (a server that answers, but not as PostgreSQL, is retried meanwhile). */
  answerMs: number
}

/**
 * Reaches the host first (a TCP connect of its own), then wants one trivial query answered.
 * Either step failing is a start-up error that says which: "cannot reach" (refused, unknown
 * host, nothing answering) or "did not answer as PostgreSQL" (connected, but no handshake).
 */
export async function firstAnswer(sql: Sql, url: string, timeouts: FirstAnswerTimeouts): Promise<void> {
  const address = addressOf(url)
  if (address) await probeTcp(address.host, address.port, timeouts.connectMs).catch((err: unknown) => Promise.reject(unreachableDatabase(err, url)))
  const notPostgres = (ms: number) => new Error(`the database${whereOf(url)} (DATABASE_URL) did not answer as PostgreSQL within ${shown(ms)}: is it a PostgreSQL server, and the port its own?`)
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(notPostgres(timeouts.answerMs)), timeouts.answerMs)
  })
  const query = sql`select 1`.then(
    () => undefined,
    (err: unknown) => {
      // the host took the connection a moment ago: a handshake that never came is not the network
      if (address && (err as { code?: unknown } | null)?.code === 'CONNECT_TIMEOUT') throw notPostgres(timeouts.connectMs)
      throw unreachableDatabase(err, url)
    },
  )
  try {
    await Promise.race([query, deadline])
  } finally {
    clearTimeout(timer)
  }
}
