#!/usr/bin/env node
// `pnpm llmguard <args>`: runs the built CLI, building it (and the packages it loads) first
// when a dist is missing or older than its sources — oclif discovers commands in dist/.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './lib/build.mjs'

function newest(path) {
  if (!existsSync(path)) return 0
  const s = statSync(path)
  if (!s.isDirectory()) return s.mtimeMs
  let latest = 0
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)))
  return latest
}

const stale = (pkg, output) => {
  const dir = join(ROOT, 'packages', pkg)
  const built = join(dir, 'dist', output)
  if (!existsSync(built)) return true
  return Math.max(newest(join(dir, 'src')), statSync(join(dir, 'package.json')).mtimeMs) > statSync(built).mtimeMs
}

// build output goes to stderr, so `pnpm -s llmguard … --json` keeps a clean stdout (without -s, pnpm
// prints its own banner there)
if (stale('shared', 'index.js') || stale('sdk', 'index.js') || stale('collector', 'index.js') || stale('cli', 'base.js')) {
  process.stderr.write('building the CLI (first run, or sources changed)…\n')
  const execpath = process.env.npm_execpath
  const [cmd, argv] =
    execpath && /pnpm/.test(execpath) ? [process.execPath, [execpath]] : ['npx', ['-y', 'pnpm@10.34.9']]
  const built = spawnSync(cmd, [...argv, '--filter', '@llmguard/cli...', 'run', 'build'], { cwd: ROOT, stdio: ['ignore', 2, 2] })
  if (built.status !== 0) {
    process.stderr.write('building the CLI failed\n')
    process.exit(built.status ?? 1)
  }
}

const child = spawn(process.execPath, [join(ROOT, 'packages', 'cli', 'bin', 'run.js'), ...process.argv.slice(2)], { stdio: 'inherit' })
// Ctrl-C reaches the child through the terminal; wait for it to finish (collector start, logs tail)
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : 1)))
