/**
 * For trying the examples without an OpenAI account: when OPENAI_API_KEY is not set, a
 * loopback fake of the OpenAI API (the one the SDK's tests use) answers instead.
 */
import { startFakeOpenAI } from '../packages/sdk/test/fakes/openai-server.js'

export async function openaiTarget(): Promise<{ apiKey: string; baseURL?: string; close: () => Promise<void> }> {
  if (process.env.OPENAI_API_KEY) return { apiKey: process.env.OPENAI_API_KEY, baseURL: process.env.OPENAI_BASE_URL, close: async () => {} }
  const fake = await startFakeOpenAI()
  fake.streamChunks = ['Streams ', 'are ', 'recorded ', 'chunk ', 'by ', 'chunk.']
  fake.streamChunkDelayMs = 30
  console.log(`(no OPENAI_API_KEY: using a fake OpenAI server at ${fake.baseURL})`)
  return { apiKey: 'sk-fake', baseURL: fake.baseURL, close: fake.close }
}

export const isMain = (url: string) => process.argv[1] !== undefined && url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!)
