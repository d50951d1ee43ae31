import { homedir } from 'node:os'
import { describe, expect, it } from 'vitest'
import { defaultOutboxPath, resolveOptions } from '../src/options.js'

describe('options', () => {
  it('takes arguments, then LLMGUARD_* variables, then defaults', () => {
    const env = {
      LLMGUARD_API_KEY: 'lg_env',
      LLMGUARD_ENDPOINT: 'http://collector:3000/',
      LLMGUARD_OUTBOX: '/tmp/env.sqlite',
      LLMGUARD_DURABILITY: 'immediate',
      LLMGUARD_SERVERLESS: 'true',
      LLMGUARD_OUTBOX_MAX_RECORDS: '500',
      LLMGUARD_POLICY: 'off',
    }
    const fromEnv = resolveOptions({ env })
    expect(fromEnv).toMatchObject({
      apiKey: 'lg_env',
      endpoint: 'http://collector:3000',
      outbox: '/tmp/env.sqlite',
      durability: 'immediate',
      serverless: true,
      maxOutboxRecords: 500,
      policy: false,
    })
    const fromArgs = resolveOptions({ env, apiKey: 'lg_arg', durability: 'buffered', policy: true, maxOutboxRecords: 7 })
    expect(fromArgs).toMatchObject({ apiKey: 'lg_arg', durability: 'buffered', policy: true, maxOutboxRecords: 7 })
    const defaults = resolveOptions({ env: {} })
    expect(defaults).toMatchObject({ apiKey: undefined, endpoint: 'http://localhost:3000', durability: 'buffered', serverless: false, maxOutboxRecords: 100_000, policy: true, writeDelayMs: 50, shipDelayMs: 1_000 })
    expect(defaults.outbox.startsWith(homedir())).toBe(true)
  })

  it('gives each endpoint and key its own default outbox', () => {
    expect(defaultOutboxPath('http://a', 'lg_1')).not.toBe(defaultOutboxPath('http://a', 'lg_2'))
    expect(defaultOutboxPath('http://a', 'lg_1')).not.toBe(defaultOutboxPath('http://b', 'lg_1'))
    expect(defaultOutboxPath('http://a', 'lg_1')).toBe(defaultOutboxPath('http://a', 'lg_1'))
    expect(defaultOutboxPath('http://a', 'lg_1')).not.toContain('lg_1')
  })

  it('takes an endpoint that is not a string (plain JavaScript, a config file) without throwing', () => {
    expect(resolveOptions({ env: { LLMGUARD_ENDPOINT: 'http://env:3000' }, endpoint: null as unknown as string }).endpoint).toBe('http://env:3000')
    for (const endpoint of [3000, true, {}, ['http://a']]) {
      // turned into text, which the guard's endpoint check refuses with its one warning (delivery.test.ts)
      expect(resolveOptions({ env: {}, endpoint: endpoint as unknown as string }).endpoint).toBe(String(endpoint))
    }
  })

  it('ignores garbage numbers and keeps the default', () => {
    expect(resolveOptions({ env: { LLMGUARD_OUTBOX_MAX_RECORDS: 'lots' } }).maxOutboxRecords).toBe(100_000)
    expect(resolveOptions({ env: {}, policyRefreshMs: Number.NaN, writeDelayMs: 'soon' as unknown as number })).toMatchObject({ policyRefreshMs: 30_000, writeDelayMs: 50 })
  })

  it('keeps durations within what a timer takes: a month is the longest timer, not one firing every ms', () => {
    const month = 30 * 86_400_000
    const longest = 2 ** 31 - 1
    expect(resolveOptions({ env: { LLMGUARD_POLICY_REFRESH_MS: String(month) } }).policyRefreshMs).toBe(longest)
    expect(resolveOptions({ env: {}, policyRefreshMs: month, pollMs: Infinity, shipDelayMs: month, writeDelayMs: month, requestTimeoutMs: month, serverlessFlushTimeoutMs: month })).toMatchObject({
      policyRefreshMs: longest,
      pollMs: longest,
      shipDelayMs: longest,
      writeDelayMs: longest,
      requestTimeoutMs: longest,
      serverlessFlushTimeoutMs: longest,
    })
    // a refresh is a request to the collector: at most one a second; a request timeout of 0
    // would turn undici's timeouts off
    expect(resolveOptions({ env: {}, policyRefreshMs: 0, requestTimeoutMs: 0, writeDelayMs: -5 })).toMatchObject({ policyRefreshMs: 1_000, requestTimeoutMs: 1, writeDelayMs: 0 })
  })
})
