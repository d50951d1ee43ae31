/**
 * A streamed answer printed as it arrives. LLMGuard records the full text and the time to
 * first token; usage is recorded only because this caller asks for it (it is never injected).
 *
 *   LLMGUARD_API_KEY=lg_… npx tsx examples/streaming.ts
 */
import OpenAI from 'openai'
import { LLMGuard, type LLMGuardOptions } from '@llmguard/sdk'
import { isMain, openaiTarget } from './_fake.js'

export async function main(options: LLMGuardOptions = {}): Promise<string> {
  const target = await openaiTarget()
  const guard = new LLMGuard(options)
  const openai = guard.wrap(new OpenAI({ apiKey: target.apiKey, baseURL: target.baseURL }))

  const stream = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Explain streaming in one sentence.' }],
    stream: true,
    stream_options: { include_usage: true },
  })
  let text = ''
  for await (const chunk of stream) {
    const piece = chunk.choices[0]?.delta.content ?? ''
    text += piece
    process.stdout.write(piece)
  }
  process.stdout.write('\n')

  // the helper works the same way, and is recorded too
  const runner = openai.chat.completions.stream({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'And again, via the helper.' }] })
  runner.on('content', (delta) => process.stdout.write(delta))
  await runner.finalChatCompletion()
  process.stdout.write('\n')

  await guard.shutdown()
  console.log('llmguard:', guard.stats())
  await target.close()
  return text
}

if (isMain(import.meta.url)) await main()
