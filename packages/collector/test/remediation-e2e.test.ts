import { join } from 'node:path'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LLMGuard, LLMGuardBlockedError } from '@llmguard/sdk'
import type { Incident, LogDetail, LogResult, Page, Remediation } from '@llmguard/shared'
import type { FakeOpenAI } from '../../sdk/test/fakes/openai-server.js'
import type { TestCollector } from './helpers/collector.js'
import type { TestUser } from './helpers/accounts.js'
import { startSdkHarness, type SdkHarness } from './helpers/sdk-harness.js'

/** An incident changes what the SDK does on its next call, and the change can be undone. */
let collector: TestCollector
let fake: FakeOpenAI
let owner: TestUser
let projectId: string
let key: string
let dir: string

let harness: SdkHarness
beforeAll(async () => {
  harness = await startSdkHarness('llmguard-remediation-e2e-')
  ;({ collector, fake, owner, projectId, key, dir } = harness)
})
afterAll(() => harness.close())

const as = { token: () => owner.accessToken }
const MINUTE = 60_000

describe('incident → automatic switch_model → the SDK follows → revert', () => {
  it('switches the model, blocks a disabled endpoint without reaching OpenAI, and calls are as before after rollback and expiry', async () => {
    await collector.client.patch(
      `/v1/projects/${projectId}/settings`,
      { autoRemediation: { latency: { action: 'switch_model', parameters: { to: 'gpt-4o-mini' }, durationMinutes: 15 } } },
      { token: as.token() },
    )
    const guard = new LLMGuard({ apiKey: key, endpoint: collector.url, outbox: join(dir, 'e2e.db') })
    const openai = guard.wrap(new OpenAI({ apiKey: 'sk-test', baseURL: fake.baseURL, maxRetries: 0 }))
    const ask = (content: string) => openai.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content }] })
    const lastModel = () => (fake.requests.at(-1)!.body as { model: string }).model
    try {
      await guard.refreshPolicy()
      await ask('before the incident')
      expect(lastModel()).toBe('gpt-4o')

      // a slow call opens a latency incident; the project's rule switches every model
      guard.record({ prompt: 'a slow call', model: 'gpt-4o', latency: 9_000 })
      await guard.flush({ timeoutMs: 10_000 })
      const incidents = await collector.client.get<Page<Incident>>(`/v1/projects/${projectId}/incidents`, { token: as.token(), query: { type: 'latency' } })
      const incident = incidents.items[0]!
      const list = async () => (await collector.client.get<Page<Remediation>>(`/v1/incidents/${incident.id}/remediations`, { token: as.token() })).items
      const [auto] = await list()
      expect(auto).toMatchObject({ actionType: 'switch_model', automatic: true, state: 'active' })

      await guard.refreshPolicy()
      expect(guard.policy.modelOverrides).toEqual({ '*': 'gpt-4o-mini' })
      await ask('after the switch')
      expect(lastModel()).toBe('gpt-4o-mini')

      // disable_endpoint: the call throws before reaching the fake server
      const disabled = await collector.client.post<Remediation>(
        `/v1/incidents/${incident.id}/remediations`,
        { actionType: 'disable_endpoint', parameters: { endpoint: 'chat.completions' } },
        { token: as.token() },
      )
      await guard.refreshPolicy()
      const sent = fake.requests.length
      await expect(ask('while disabled')).rejects.toBeInstanceOf(LLMGuardBlockedError)
      expect(fake.requests.length).toBe(sent)

      // rollback: calls go out again (still switched: the automatic action is active)
      await collector.client.post(`/v1/remediations/${disabled.id}/rollback`, undefined, { token: as.token() })
      await guard.refreshPolicy()
      await ask('after the rollback')
      expect(lastModel()).toBe('gpt-4o-mini')

      // the duration ends: the job reverts the switch
      expect(await collector.app.remediation.runExpiryJob(new Date(Date.now() + 16 * MINUTE))).toMatchObject({ expired: 1 })
      await guard.refreshPolicy()
      expect(guard.policy.modelOverrides).toEqual({})
      await ask('after the revert')
      expect(lastModel()).toBe('gpt-4o')
      await guard.flush({ timeoutMs: 10_000 })
    } finally {
      await guard.shutdown({ timeoutMs: 5_000 })
    }

    // the switched call carries requestedModel; the blocked one is recorded as blocked, not as a violation
    const logs = async (search: string) =>
      (await collector.client.get<Page<LogResult>>(`/v1/projects/${projectId}/logs`, { token: as.token(), query: { search } })).items
    const [switched] = await logs('after the switch')
    const detail = await collector.client.get<LogDetail>(`/v1/projects/${projectId}/logs/${switched!.id}`, { token: as.token() })
    expect(detail).toMatchObject({ model: 'gpt-4o-mini', requestedModel: 'gpt-4o', policyViolation: null })
    const [blocked] = await logs('while disabled')
    expect(blocked).toMatchObject({ status: 'error', policyViolation: null })
    const [reverted] = await logs('after the revert')
    expect(reverted).toMatchObject({ model: 'gpt-4o' })
  })
})
