import { connect, type Socket } from 'node:net'
import { Worker } from 'node:worker_threads'

/**
 * A loopback port where connecting hangs as it does to a host that drops packets: a listening
 * socket that never accepts (its thread's event loop is blocked), with its accept queue filled
 * up, after which the kernel drops further SYNs instead of answering them. Works offline and
 * needs no privileges, unlike a firewall rule or a non-routable address.
 */
export interface Blackhole {
  port: number
  close(): Promise<void>
}

const LISTENER = `
const { parentPort } = require('node:worker_threads')
const net = require('node:net')
const server = net.createServer()
server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  parentPort.postMessage(server.address().port)
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
})`

export async function startBlackhole(): Promise<Blackhole> {
  const worker = new Worker(LISTENER, { eval: true })
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  const fillers: Socket[] = []
  const close = async () => {
    for (const s of fillers) s.destroy()
    await worker.terminate()
  }
  // connect until one attempt hangs: the queue is full from then on
  for (let i = 0; i < 64; i++) {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => undefined)
    fillers.push(socket)
    const connected = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 250)
      socket.once('connect', () => {
        clearTimeout(timer)
        resolve(true)
      })
    })
    if (!connected) return { port, close }
  }
  await close()
  throw new Error('could not fill the accept queue of the blackhole listener')
}
