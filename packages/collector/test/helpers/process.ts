import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url))

export interface Spawned {
  child: ChildProcess
  output(): string
  /** Resolves with the exit code (or signal) once the process ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Resolves with the URL once the collector logs that it is ready. */
  ready(timeoutMs?: number): Promise<string>
}

/**
 * Runs the real collector entry point (src/main.ts through tsx) as a child process; `preload`
 * modules run first (`--import`), as a test's way into the process.
 */
export function spawnCollector(env: Record<string, string>, preload: string[] = []): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', ...preload.flatMap((p) => ['--import', p]), MAIN], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  )
  return {
    child,
    output: () => out,
    exited,
    ready(timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`collector not ready in ${timeoutMs} ms:\n${out}`)), timeoutMs)
        const check = () => {
          const line = out.split('\n').find((l) => l.includes('"collector ready"'))
          if (line) {
            clearTimeout(timer)
            child.stdout!.off('data', check)
            resolve((JSON.parse(line) as { url: string }).url)
          }
        }
        child.stdout!.on('data', check)
        exited.then(({ code }) => {
          clearTimeout(timer)
          reject(new Error(`collector exited with ${code} before ready:\n${out}`))
        })
        check()
      })
    },
  }
}
