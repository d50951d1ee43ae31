import { createServer, type AddressInfo, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { startCollector } from '../src/collector.js'
import { addressOf } from '../src/db/reach.js'
import { startBlackhole } from './helpers/blackhole.js'

/** Starts a collector on DATABASE_URL=…host:port with short timeouts; the error it fails with, and when. */
async function failedStart(port: number) {
  const config = loadConfig({ DATABASE_URL: `postgres://llmguard:s3cret-pw@127.0.0.1:${port}/llmguard`, PORT: '0', LOG_LEVEL: 'silent' })
  const started = Date.now()
  const err = await startCollector(config, { databaseConnectMs: 1_000, databaseAnswerMs: 20_000 }).then(
    () => undefined,
    (e: Error) => e,
  )
  return { message: err?.message, ms: Date.now() - started }
}

describe('start-up against a DATABASE_URL that does not answer', () => {
  it('says the host cannot be reached when connecting hangs (packets dropped), after the connect timeout', async () => {
    const blackhole = await startBlackhole()
    try {
      const { message, ms } = await failedStart(blackhole.port)
      expect(message).toBe(
        `cannot reach the database at 127.0.0.1:${blackhole.port} (DATABASE_URL): connect timed out after 1 s (nothing answered: a wrong address, or a firewall dropping the packets?)`,
      )
      expect(ms).toBeGreaterThanOrEqual(1_000)
      expect(ms).toBeLessThan(5_000)
    } finally {
      await blackhole.close()
    }
  })

  it('says it is not PostgreSQL when the port accepts the connection and then says nothing', async () => {
    let connections = 0
    const sockets = new Set<Socket>()
    const silent = createServer((socket) => {
      connections++
      sockets.add(socket)
      socket.on('error', () => undefined)
    })
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const port = (silent.address() as AddressInfo).port
    try {
      const { message, ms } = await failedStart(port)
      expect(message).toBe(`the database at 127.0.0.1:${port} (DATABASE_URL) did not answer as PostgreSQL within 1 s: is it a PostgreSQL server, and the port its own?`)
      expect(ms).toBeLessThan(5_000)
      expect(connections).toBeGreaterThan(0)
    } finally {
      for (const s of sockets) s.destroy()
      silent.close()
    }
  })

  it('probes the one host:port postgres.js would connect to, and nothing it would not', () => {
    expect(addressOf('postgres://u:p@db.internal:6543/x')).toEqual({ host: 'db.internal', port: 6543 })
    expect(addressOf('postgresql://u@10.0.0.5/x?sslmode=require')).toEqual({ host: '10.0.0.5', port: 5432 })
    expect(addressOf('postgres://u@[::1]:5433/x')).toEqual({ host: '::1', port: 5433 })
    expect(addressOf('postgres://u@h1:5432,h2:5432/x')).toBeUndefined() // several hosts
    expect(addressOf('postgres://u@%2Fvar%2Frun%2Fpostgresql/x')).toBeUndefined() // a socket directory
    expect(addressOf('postgres:///x')).toBeUndefined() // PGHOST
  })
})
