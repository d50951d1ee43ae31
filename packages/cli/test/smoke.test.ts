import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { Config } from '@oclif/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestCollector, type TestCollector } from '../../collector/test/helpers/collector.js'
import { CLI_ROOT, tempConfigDir } from './helpers.js'

const ROOT = join(CLI_ROOT, '..', '..')

function newest(path: string): number {
  const s = statSync(path)
  if (!s.isDirectory()) return s.mtimeMs
  return Math.max(0, ...readdirSync(path).map((e) => newest(join(path, e))))
}

/** Builds a package with its own tsup config when its dist is missing or older than its sources. */
function buildIfStale(pkg: string, output: string): void {
  const dir = join(ROOT, 'packages', pkg)
  const built = join(dir, 'dist', output)
  if (existsSync(built) && statSync(built).mtimeMs >= Math.max(newest(join(dir, 'src')), newest(join(dir, 'package.json')))) return
  const r = spawnSync(join(ROOT, 'node_modules', '.bin', 'tsup'), [], { cwd: dir, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`building ${pkg} failed:\n${r.stdout}\n${r.stderr}`)
}

let collector: TestCollector
let tmp: ReturnType<typeof tempConfigDir>

/** The built binary as a real subprocess. */
function llmguard(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(CLI_ROOT, 'bin', 'run.js'), ...args], {
      cwd: tmp.dir,
      env: { ...process.env, LLMGUARD_CONFIG_DIR: tmp.dir, LLMGUARD_ENDPOINT: '', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

beforeAll(async () => {
  // the binary runs dist/, which imports the dist of @llmguard/shared and (doctor, outbox) @llmguard/sdk
  buildIfStale('shared', 'index.js')
  buildIfStale('sdk', 'index.js')
  buildIfStale('cli', 'commands/init.js')
  collector = await startTestCollector()
  tmp = tempConfigDir()
}, 120_000)
afterAll(async () => {
  await collector?.close()
  tmp?.cleanup()
})

describe('the built llmguard binary', () => {
  it('lists its commands, runs init unattended, searches logs, and fails cleanly', async () => {
    const help = await llmguard(['--help'])
    expect(help.code).toBe(0)
    for (const topic of ['init', 'logs', 'incidents', 'metrics', 'doctor']) expect(help.stdout).toContain(topic)

    const email = `smoke-${randomUUID()}@example.com`
    const init = await llmguard(['init', '--collector', collector.url, '--email', email, '--password', 'smoke test password', '--signup', '--json'])
    expect(init.stderr).toBe('')
    expect(init.code).toBe(0)
    const result = JSON.parse(init.stdout)
    expect(result).toMatchObject({ user: { email, created: true }, envFile: join(tmp.dir, '.env') })
    const key = /^LLMGUARD_API_KEY=(\S+)$/m.exec(readFileSync(join(tmp.dir, '.env'), 'utf8'))![1]!
    await collector.client.post('/v1/llm/requests', { prompt: 'smoke signal', model: 'gpt-4o-mini', latency: 42 }, { token: key })

    // the .env path flag through the real binary, to a file that does not exist yet: Node.js reads
    // an `--env-file` anywhere in its argv and exits when the file is missing, before any CLI code runs
    const envPath = join(tmp.dir, '.env.llmguard')
    const again = await llmguard(['init', '--collector', collector.url, '--email', email, '--password', 'smoke test password', '--no-signup', '--project', result.project.id, '--dotenv', envPath, '--json'])
    expect(again.stderr).toBe('')
    expect(again.code).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({ envFile: envPath, project: { id: result.project.id, created: false } })
    expect(readFileSync(envPath, 'utf8')).toMatch(/^LLMGUARD_API_KEY=lg_\S+$/m)

    const search = await llmguard(['logs', 'search', '--search', 'smoke', '--json'])
    expect(search.code).toBe(0)
    expect(JSON.parse(search.stdout).items).toMatchObject([{ prompt: 'smoke signal', latency: 42 }])
    const table = await llmguard(['logs', 'search'])
    expect(table.stdout).toMatch(/smoke signal/)

    const down = await llmguard(['whoami', '--collector', 'http://127.0.0.1:9'])
    expect(down.code).toBe(1)
    expect(down.stderr).toContain('logged in to')
    const unreachable = await llmguard(['login', '--collector', 'http://127.0.0.1:9', '--email', email, '--password', 'x'])
    expect(unreachable.code).toBe(69)
    expect(unreachable.stderr).toMatch(/^Error: collector at http:\/\/127\.0\.0\.1:9 is unreachable: .* \[UNREACHABLE\]\n$/)
    const bad = await llmguard(['logs', 'search', '--limit', 'lots'])
    expect(bad.code).toBe(2)
    expect(bad.stderr.trim().split('\n')).toHaveLength(1)
    // an unknown command is an error like any other, in --json too
    const unknown = await llmguard(['logs', 'serch'])
    expect([unknown.code, unknown.stderr]).toEqual([2, 'Error: unknown command "logs serch" (see `llmguard --help` for the commands)\n'])
    const unknownJson = await llmguard(['frobnicate', '--json'])
    expect(unknownJson.code).toBe(2)
    expect(JSON.parse(unknownJson.stdout)).toEqual({ error: { code: 'USAGE', message: 'unknown command "frobnicate" (see `llmguard --help` for the commands)' } })
    // the NAME=VALUE pairs do not make the incident and the action repeatable
    expect((await llmguard(['remediate', 'apply', '--help'])).stdout).toContain('$ llmguard remediate apply INCIDENT ACTION [NAME=VALUE...]\n')
  })

  it('an extra word after a command is an unexpected argument, not an unknown command', async () => {
    const extra = await llmguard(['keys', 'create', 'prod'])
    expect([extra.code, extra.stderr, extra.stdout]).toEqual([2, 'Error: Unexpected argument: prod (see `llmguard keys create --help`)\n', ''])
    const two = await llmguard(['metrics', 'for', 'today', '--json'])
    expect(two.code).toBe(2)
    expect(JSON.parse(two.stdout)).toEqual({ error: { code: 'USAGE', message: 'Unexpected arguments: for, today (see `llmguard metrics --help`)' } })
    // a misspelt command of a topic is still an unknown command
    expect((await llmguard(['projects', 'lst'])).stderr).toBe('Error: unknown command "projects lst" (see `llmguard --help` for the commands)\n')
    // and --help after the extra word is the command's help
    const help = await llmguard(['keys', 'create', 'prod', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('$ llmguard keys create ')
  })

  it('help COMMAND is COMMAND --help; version, -v and --version print the version', async () => {
    const help = await llmguard(['help', 'logs', 'search'])
    expect([help.code, help.stderr]).toEqual([0, ''])
    expect(help.stdout).toContain('$ llmguard logs search ')
    expect(help.stdout).toBe((await llmguard(['logs', 'search', '--help'])).stdout)
    expect((await llmguard(['help', 'incidents'])).stdout).toContain('incidents list')
    expect((await llmguard(['help'])).stdout).toContain('TOPICS')
    const unknown = await llmguard(['help', 'logs', 'serch'])
    expect([unknown.code, unknown.stderr]).toEqual([2, 'Error: unknown command "logs serch" (see `llmguard --help` for the commands)\n'])
    expect((await llmguard(['logs', 'serch', '--help'])).stderr).toBe(unknown.stderr)

    const { version } = JSON.parse(readFileSync(join(CLI_ROOT, 'package.json'), 'utf8')) as { version: string }
    for (const argv of [['version'], ['-v'], ['--version']]) {
      const r = await llmguard(argv)
      expect([r.code, r.stderr], argv[0]).toEqual([0, ''])
      expect(r.stdout, argv[0]).toMatch(new RegExp(`^@llmguard/cli/${version.replaceAll('.', '\\.')} \\S+ node-v\\S+\\n$`))
    }
    expect(JSON.parse((await llmguard(['version', '--json'])).stdout)).toMatchObject({ name: '@llmguard/cli', version })
  })

  it('remediate apply --help shows only the parameters as repeatable', async () => {
    const help = (await llmguard(['remediate', 'apply', '--help'])).stdout
    expect(help).toMatch(/^ {2}INCIDENT +incident id$/m)
    expect(help).toMatch(/^ {2}ACTION +\(switch_model\|/m)
    expect(help).toMatch(/^ {2}\[PARAMETERS\.\.\.\] /m)
    expect(help).not.toMatch(/INCIDENT\.\.\.|ACTION\.\.\./)
  })

  it('has no flag Node.js takes for its own', async () => {
    // Node.js 20 reads `--env-file` (and `--env-file=`) from anywhere in its arguments, script
    // arguments included, and exits when the file is missing: such a flag could never reach us
    const config = await Config.load(CLI_ROOT)
    expect(config.commands.length).toBeGreaterThan(20)
    const names = config.commands.flatMap((cmd) => Object.entries(cmd.flags).flatMap(([name, flag]) => [name, ...((flag as { aliases?: string[] }).aliases ?? [])].map((n) => `${cmd.id} --${n}`)))
    expect(names.filter((n) => / --env-file/.test(n))).toEqual([])
    expect(names).toContain('init --dotenv')
  })
})
