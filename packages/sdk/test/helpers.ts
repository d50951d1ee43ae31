import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import { LLMGuard, type LLMGuardOptions } from '../src/index.js'
import { TEST_KEY, type FakeCollector } from './fakes/collector-server.js'
import type { FakeOpenAI } from './fakes/openai-server.js'

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'llmguard-sdk-'))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

export function makeGuard(collector: FakeCollector | undefined, dir: string, o: LLMGuardOptions = {}): { guard: LLMGuard; warnings: string[] } {
  const warnings: string[] = []
  const guard = new LLMGuard({
    apiKey: collector ? TEST_KEY : undefined,
    endpoint: collector?.url ?? 'http://127.0.0.1:9',
    outbox: join(dir, 'outbox.sqlite'),
    logger: { warn: (m) => warnings.push(m) },
    env: {},
    ...o,
  })
  return { guard, warnings }
}

export function openaiClient(fake: FakeOpenAI, o: ConstructorParameters<typeof OpenAI>[0] = {}): OpenAI {
  return new OpenAI({ apiKey: 'sk-test-secret-key-123', baseURL: fake.baseURL, maxRetries: 0, ...o })
}

/** Polls until fn is true (real time), failing after timeoutMs. */
export async function until(fn: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

export function storedRecords(c: FakeCollector): Record<string, any>[] {
  return [...c.stored.values()] as Record<string, any>[]
}
