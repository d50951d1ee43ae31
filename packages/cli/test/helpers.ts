import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Config, type Command } from '@oclif/core'

export const CLI_ROOT = fileURLToPath(new URL('..', import.meta.url))

let config: Config | undefined
const loadConfig = async () => (config ??= await Config.load(CLI_ROOT))

export interface CliRun<T = unknown> {
  stdout: string
  stderr: string
  exitCode: number
  result: T | undefined
  /** stdout parsed as JSON (for --json runs). */
  json: any
}

/**
 * Runs a command class in this process (the sources, no build) the way oclif would, capturing
 * what it writes. Exit codes come from oclif's ExitError (`this.exit(n)`).
 */
export async function run<T = unknown>(cmd: { run(argv: string[], config: Config): Promise<unknown> } & Pick<typeof Command, 'id'>, argv: string[]): Promise<CliRun<T>> {
  const out: string[] = []
  const err: string[] = []
  const stdoutWrite = process.stdout.write
  const stderrWrite = process.stderr.write
  process.stdout.write = ((chunk: string | Uint8Array) => (out.push(String(chunk)), true)) as typeof process.stdout.write
  process.stderr.write = ((chunk: string | Uint8Array) => (err.push(String(chunk)), true)) as typeof process.stderr.write
  let exitCode = 0
  let result: T | undefined
  const exitBefore = process.exitCode
  try {
    result = (await cmd.run(argv, await loadConfig())) as T
  } catch (e) {
    const exit = (e as { oclif?: { exit?: number } }).oclif?.exit
    if (exit === undefined) throw e
    exitCode = exit
  } finally {
    process.stdout.write = stdoutWrite
    process.stderr.write = stderrWrite
    // a command that answers in full (--json) and still fails sets process.exitCode instead
    if (exitCode === 0 && typeof process.exitCode === 'number' && process.exitCode !== exitBefore) exitCode = process.exitCode
    process.exitCode = exitBefore
  }
  const stdout = out.join('')
  let json: unknown
  try {
    json = JSON.parse(stdout)
  } catch {
    json = undefined
  }
  return { stdout, stderr: err.join(''), exitCode, result, json }
}

/** A fresh LLMGUARD_CONFIG_DIR (and working dir for .env files). */
export function tempConfigDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'llmguard-cli-'))
  const before = process.env.LLMGUARD_CONFIG_DIR
  process.env.LLMGUARD_CONFIG_DIR = dir
  return {
    dir,
    cleanup() {
      if (before === undefined) delete process.env.LLMGUARD_CONFIG_DIR
      else process.env.LLMGUARD_CONFIG_DIR = before
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
