import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Page, Project } from '@llmguard/shared'
import { startTestCollector, type TestCollector } from '../../collector/test/helpers/collector.js'
import Login from '../src/commands/login.js'
import LogsSearch from '../src/commands/logs/search.js'
import { run, tempConfigDir } from './helpers.js'

// The README's demo flow: `pnpm seed`, then `pnpm llmguard login` to browse what it made.
const SEED = fileURLToPath(new URL('../../../scripts/seed.mjs', import.meta.url))
const exec = promisify(execFile)

let collector: TestCollector
let tmp: ReturnType<typeof tempConfigDir>

beforeAll(async () => {
  collector = await startTestCollector()
  tmp = tempConfigDir()
})
afterAll(async () => {
  await collector?.close()
  tmp?.cleanup()
})

describe('pnpm seed', () => {
  it('seeding twice fills one project; logging in afterwards browses it without --project', async () => {
    const email = 'demo@llmguard.local'
    const password = 'demo password 1'
    const seed = () => exec(process.execPath, [SEED, '--url', collector.url, '--email', email, '--password', password, '--records', '40'], { env: { ...process.env, LLMGUARD_ENDPOINT: '' } })
    const first = await seed()
    expect(first.stdout).toMatch(/created project "demo" \(([0-9a-f-]{36})\) and a new API key/)
    expect(first.stdout).toContain(`pnpm llmguard login --collector ${collector.url} --email ${email}`)
    const id = /project "demo" \(([0-9a-f-]{36})\)/.exec(first.stdout)![1]
    const second = await seed()
    expect(second.stdout).toContain(`using the existing project "demo" (${id}) and a new API key`)

    const login = await run<any>(Login, ['--collector', collector.url, '--email', email, '--password', password])
    expect(login.stdout).toContain(`default project: demo (${id})`)
    const projects = await collector.client.get<Page<Project>>('/v1/projects', { token: (await collector.client.post<any>('/v1/auth/login', { email, password })).tokens.accessToken })
    expect(projects.items.map((p) => p.id)).toEqual([id])
    const search = await run<any>(LogsSearch, ['--json', '--limit', '1'])
    expect(search.exitCode).toBe(0)
    expect(search.json.total).toBe(80)
  })
})
