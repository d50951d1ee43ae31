// Builds the packages the collector needs when their dist is missing or older than their sources.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const PNPM_VERSION = '10.34.9'

function newest(dir) {
  let latest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
  }
  return latest
}

function stale(pkg, output) {
  const dist = join(ROOT, 'packages', pkg, 'dist', output)
  if (!existsSync(dist)) return true
  const sources = Math.max(newest(join(ROOT, 'packages', pkg, 'src')), statSync(join(ROOT, 'packages', pkg, 'package.json')).mtimeMs)
  return sources > statSync(dist).mtimeMs
}

/** Runs pnpm: the one running this script when there is one, else the pinned version through npx. */
export function pnpm(args) {
  const execpath = process.env.npm_execpath
  const [cmd, argv] =
    execpath && /pnpm/.test(execpath)
      ? [process.execPath, [execpath, ...args]]
      : ['npx', ['-y', `pnpm@${PNPM_VERSION}`, ...args]]
  const result = spawnSync(cmd, argv, { cwd: ROOT, stdio: 'inherit' })
  if (result.status !== 0) {
    process.stderr.write(`pnpm ${args.join(' ')} failed\n`)
    process.exit(result.status ?? 1)
  }
}

export function ensureCollectorBuilt() {
  if (stale('shared', 'index.js') || stale('collector', 'main.js')) {
    process.stderr.write('building the collector (first start, or sources changed)…\n')
    pnpm(['--filter', '@llmguard/collector...', 'run', 'build'])
  }
  return join(ROOT, 'packages', 'collector', 'dist', 'main.js')
}

/** The SDK as published (dist/, ESM and CommonJS): what `pnpm bench:sdk` measures. */
export function ensureSdkBuilt() {
  if (stale('shared', 'index.js') || stale('sdk', 'index.js')) {
    process.stderr.write('building the SDK (first run, or sources changed)…\n')
    pnpm(['--filter', '@llmguard/sdk...', 'run', 'build'])
  }
  return join(ROOT, 'packages', 'sdk', 'dist', 'index.js')
}
