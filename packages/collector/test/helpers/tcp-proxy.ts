import { createServer, connect, type Server, type Socket } from 'node:net'

/**
 * A loopback TCP proxy that a test can cut and restore, to make a real database unreachable
 * without stopping it.
 */
export class TcpProxy {
  private server?: Server
  private readonly sockets = new Set<Socket>()
  port = 0

  constructor(private readonly target: { host?: string; port?: number; path?: string }) {}

  async start(port = this.port): Promise<number> {
    this.server = createServer((client) => {
      const upstream = this.target.path ? connect(this.target.path) : connect(this.target.port!, this.target.host ?? '127.0.0.1')
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('close', () => this.sockets.delete(s))
        s.on('error', () => s.destroy())
      }
      client.pipe(upstream).pipe(client)
      client.on('close', () => upstream.destroy())
      upstream.on('close', () => client.destroy())
    })
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve))
    this.port = (this.server.address() as { port: number }).port
    return this.port
  }

  /** Drops every connection and stops listening: clients now get "connection refused". */
  async cut(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()))
    this.server = undefined
  }
}
