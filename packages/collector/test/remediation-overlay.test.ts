import { describe, expect, it } from 'vitest'
import { DEFAULT_POLICY, type Policy } from '@llmguard/shared'
import type { ScoredRecord } from '../src/ingest/pipeline.js'
import type { PolicyBody } from '../src/policy/service.js'
import { applyFields, conflicts, differences, fold, read, targetOf, type Layer } from '../src/remediation/overlay.js'
import { POLICY_CACHE_MS, POLICY_GRACE_MS, policyViolationAnnotator, violationOf } from '../src/remediation/violations.js'

const { version: _v, ...base } = DEFAULT_POLICY
const settings: PolicyBody = { ...base, systemPrompt: 'Settings.' }
const layer = (actionType: Layer['actionType'], parameters: object, over: PolicyBody = settings): Layer => ({
  actionType,
  after: targetOf(actionType, parameters as never, over, settings),
})

describe('policy layers (pure)', () => {
  it('later layers win, reset_settings hides everything below it, and the live settings show through it', () => {
    const layers = [
      layer('switch_model', { to: 'b' }),
      layer('disable_endpoint', { endpoint: 'responses' }),
      layer('change_system_prompt', { systemPrompt: 'One.' }),
      layer('change_system_prompt', { systemPrompt: 'Two.' }),
    ]
    expect(fold(settings, layers)).toMatchObject({ modelOverrides: { '*': 'b' }, disabledEndpoints: ['responses'], systemPrompt: 'Two.' })
    const reset = { actionType: 'reset_settings' as const, after: {} }
    expect(fold(settings, [...layers, reset])).toEqual(settings)
    const newer = { ...settings, safetyThreshold: 42 }
    expect(fold(newer, [...layers, reset, layer('rate_limit_user', { userId: 'u', limitPerMinute: 2 })])).toEqual({ ...newer, userRateLimits: { u: 2 } })
  })

  it('reset_settings records exactly the fields that differ from the settings', () => {
    const current = fold(settings, [layer('switch_model', { from: 'a', to: 'b' }), layer('disable_endpoint', { endpoint: 'x' })])
    const target = targetOf('reset_settings', {}, current, settings)
    expect(target).toEqual({ modelOverrides: { a: null }, disabledEndpoints: { x: false } })
    expect(read(current, target)).toEqual({ modelOverrides: { a: 'b' }, disabledEndpoints: { x: true } })
    expect(differences(applyFields(current, target), settings)).toEqual({})
  })

  it('conflicts only on a shared field (map fields per key), always under a later reset', () => {
    const all = layer('switch_model', { to: 'b' })
    expect(conflicts(all, layer('switch_model', { from: 'a', to: 'c' }))).toBe(false)
    expect(conflicts(all, layer('switch_model', { to: 'c' }))).toBe(true)
    expect(conflicts(layer('increase_safety_threshold', { threshold: 10 }), layer('increase_safety_threshold', { threshold: 20 }))).toBe(true)
    expect(conflicts(layer('rate_limit_user', { userId: 'a', limitPerMinute: 1 }), layer('rate_limit_user', { userId: 'b', limitPerMinute: 1 }))).toBe(false)
    expect(conflicts(all, { actionType: 'reset_settings', after: {} })).toBe(true)
  })
})

describe('the violation annotator cache', () => {
  it('reads the policy at most once per second per project, and at once after a local change', async () => {
    let t = 1_000_000
    let reads = 0
    let policy: Policy = { ...DEFAULT_POLICY, disabledEndpoints: ['completions'] }
    const { annotate, invalidate } = policyViolationAnnotator(async () => (reads++, { policy, changedAt: -Infinity }), () => t)
    const record = () => ({ model: 'gpt-4o', endpoint: 'completions', timestamp: new Date(t).toISOString(), policyViolation: null }) as unknown as ScoredRecord
    const ctx = { projectId: 'p' } as never
    const flag = async () => {
      const r = record()
      await annotate([r], ctx)
      return r.policyViolation
    }
    expect(await flag()).toEqual({ disabledEndpoint: 'completions' })
    policy = { ...DEFAULT_POLICY }
    t += POLICY_CACHE_MS - 1
    expect(await flag()).toEqual({ disabledEndpoint: 'completions' })
    expect(reads).toBe(1)
    t += 1
    expect(await flag()).toBeNull()
    expect(reads).toBe(2)
    policy = { ...DEFAULT_POLICY, modelOverrides: { '*': 'gpt-4o-mini' } }
    invalidate('p')
    expect(await flag()).toEqual({ switchedModel: { model: 'gpt-4o', expected: 'gpt-4o-mini' } })
    expect(reads).toBe(3)
  })
})

describe('violation flags', () => {
  it('judge only calls made after the policy changed, and the SDK had time to hear of it', async () => {
    const changedAt = Date.parse('2026-12-06T12:00:00Z')
    const policy: Policy = { ...DEFAULT_POLICY, disabledEndpoints: ['completions'] }
    const { annotate } = policyViolationAnnotator(async () => ({ policy, changedAt }), () => changedAt + 3_600_000)
    const made = (ms: number) => ({ model: 'gpt-4o', endpoint: 'completions', timestamp: new Date(changedAt + ms).toISOString(), policyViolation: null }) as unknown as ScoredRecord
    // made before the change (shipped late from an outbox), or before the SDK's next refresh: no violation
    const records = [made(-600_000), made(0), made(POLICY_GRACE_MS - 1), made(POLICY_GRACE_MS), made(3_000_000)]
    await annotate(records, { projectId: 'p' } as never)
    expect(records.map((r) => r.policyViolation)).toEqual([null, null, null, { disabledEndpoint: 'completions' }, { disabledEndpoint: 'completions' }])
  })

  it('judge a model by the overrides the policy has, not by what every object inherits', () => {
    const policy = { ...DEFAULT_POLICY, modelOverrides: { 'gpt-4o': 'gpt-4o-mini' } }
    for (const model of ['constructor', 'toString', 'hasOwnProperty']) {
      expect(violationOf(policy, { model, endpoint: 'chat.completions' } as ScoredRecord)).toBeNull()
    }
    expect(violationOf(policy, { model: 'gpt-4o', endpoint: 'chat.completions' } as ScoredRecord)).toEqual({ switchedModel: { model: 'gpt-4o', expected: 'gpt-4o-mini' } })
  })
})
