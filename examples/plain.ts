/**
 * The smallest use: wrap a client, make calls, shut down (which ships what is left).
 *
 *   LLMGUARD_API_KEY=lg_… LLMGUARD_ENDPOINT=http://localhost:3000 npx tsx examples/plain.ts
 */
import OpenAI from 'openai'
import { LLMGuard, type LLMGuardOptions } from '@llmguard/sdk'
import { isMain, openaiTarget } from './_fake.js'

export async function main(options: LLMGuardOptions = {}): Promise<ReturnType<LLMGuard['stats']>> {
  const target = await openaiTarget()
  const guard = new LLMGuard(options) // apiKey/endpoint from LLMGUARD_API_KEY / LLMGUARD_ENDPOINT
  const openai = guard.wrap(new OpenAI({ apiKey: target.apiKey, baseURL: target.baseURL }))

  const chat = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Give me one tip for writing good commit messages.' }],
  })
  console.log('chat:', chat.choices[0]?.message.content)

  const emb = await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'hello' })
  console.log('embedding dimensions:', emb.data[0]?.embedding.length)

  // another provider's call, logged by hand
  guard.record({ prompt: 'user: hi', response: 'hello!', model: 'claude-3-5-haiku', latency: 310, endpoint: 'anthropic.messages' })

  await guard.shutdown({ timeoutMs: 5000 })
  const stats = guard.stats()
  console.log('llmguard:', stats)
  await target.close()
  return stats
}

if (isMain(import.meta.url)) await main()
