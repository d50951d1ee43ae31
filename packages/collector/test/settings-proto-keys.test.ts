import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { request } from 'undici'
import type { ProjectSettingsResponse } from '@llmguard/shared'
import { startTestCollector, type TestCollector } from './helpers/collector.js'
import { createProject, signUp, type TestUser } from './helpers/accounts.js'

let collector: TestCollector
let owner: TestUser
let projectId: string

beforeAll(async () => {
  collector = await startTestCollector()
  owner = await signUp(collector)
  projectId = (await createProject(collector, owner, 'proto')).id
})
afterAll(() => collector.close())

/** The body as text: JSON.parse makes `__proto__` an own key, which an object literal in the test would not. */
async function patch(body: string) {
  const res = await request(`${collector.url}/v1/projects/${projectId}/settings`, {
    method: 'PATCH',
    body,
    headers: { authorization: `Bearer ${owner.accessToken}`, 'content-type': 'application/json' },
  })
  return { status: res.statusCode, json: (await res.body.json()) as { error?: { code: string; details: { issues: unknown[] } } } & Partial<ProjectSettingsResponse> }
}
const settings = () => collector.client.get<ProjectSettingsResponse>(`/v1/projects/${projectId}/settings`, { token: owner.accessToken })

describe('a __proto__ key in a project settings map (zod would drop it silently)', () => {
  it.each([
    ['metadata', '{"metadata":{"__proto__":{"a":1},"b":2}}', 'a metadata key named "__proto__" cannot be stored; rename it'],
    ['priceOverrides', '{"priceOverrides":{"__proto__":{"input":1,"output":2},"gpt-4o":{"input":1,"output":2}}}', 'a model named "__proto__" cannot be priced'],
    ['autoRemediation', '{"autoRemediation":{"__proto__":{"action":"reset_settings","durationMinutes":5}}}', '"__proto__" is not an incident type'],
  ])('in %s is refused by name, and nothing changes', async (field, body, message) => {
    const before = await settings()
    const res = await patch(body)
    expect([res.status, res.json.error?.code]).toEqual([400, 'VALIDATION_ERROR'])
    expect(res.json.error!.details.issues).toEqual([{ path: `body.${field}.__proto__`, message }])
    expect(await settings()).toEqual(before)
  })

  it('names every such key of one body', async () => {
    const res = await patch('{"metadata":{"__proto__":{}},"priceOverrides":{"__proto__":{"input":1,"output":2}}}')
    expect(res.status).toBe(400)
    expect(res.json.error!.details.issues).toEqual([
      { path: 'body.metadata.__proto__', message: 'a metadata key named "__proto__" cannot be stored; rename it' },
      { path: 'body.priceOverrides.__proto__', message: 'a model named "__proto__" cannot be priced' },
    ])
  })

  it('one nested deeper in metadata is stored as sent, as in a record', async () => {
    const res = await patch('{"metadata":{"b":2,"deep":{"__proto__":{"kept":true}}}}')
    expect(res.status).toBe(200)
    expect(JSON.stringify(res.json.metadata)).toBe('{"b":2,"deep":{"__proto__":{"kept":true}}}')
    expect(JSON.stringify((await settings()).metadata)).toBe('{"b":2,"deep":{"__proto__":{"kept":true}}}')
  })

  it('in a rule or a price, or at the top of the body, is a 400 already (strict objects)', async () => {
    for (const body of [
      '{"__proto__":{"a":1},"rateLimit":5}',
      '{"autoRemediation":{"latency":{"action":"reset_settings","parameters":{"__proto__":{"a":1}},"durationMinutes":5}}}',
      '{"priceOverrides":{"gpt-4o":{"__proto__":{"a":1},"input":1,"output":2}}}',
    ]) {
      const res = await patch(body)
      expect([body, res.status, res.json.error?.code]).toEqual([body, 400, 'VALIDATION_ERROR'])
    }
  })
})
