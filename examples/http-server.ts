/**
 * An HTTP service that answers questions through OpenAI. Each request's end user goes into the
 * record (`withContext`), so the project's per-user rate limits apply; policy blocks become
 * 403/429 answers; SIGTERM drains the outbox before exit.
 *
 *   LLMGUARD_API_KEY=lg_… npx tsx examples/http-server.ts     (EXAMPLE_PORT=… for another port than 8787;
 *                                                           or `node --env-file=.env --import tsx …` with the .env `llmguard init` wrote)
 *   curl -s localhost:8787/ask -H 'x-user: alice' -d 'What is an outbox?'
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import OpenAI from 'openai'
import { LLMGuard, LLMGuardBlockedError, LLMGuardRateLimitedError, withContext, type LLMGuardOptions } from '@llmguard/sdk'
import { isMain, openaiTarget } from './_fake.js'

export async function start(options: LLMGuardOptions = {}, port = Number(process.env.EXAMPLE_PORT || 8787)): Promise<{ url: string; stop: () => Promise<void>; guard: LLMGuard }> {
  const target = await openaiTarget()
  const guard = new LLMGuard({ metadata: { service: 'ask-api' }, ...options })
  const openai = guard.wrap(new OpenAI({ apiKey: target.apiKey, baseURL: target.baseURL }))

  const server: Server = createServer(async (req, res) => {
    if (req.method !== 'POST' || req.url !== '/ask') {
      res.writeHead(404).end()
      return
    }
    let question = ''
    for await (const chunk of req) question += chunk
    const userId = String(req.headers['x-user'] ?? 'anonymous')
    try {
      const answer = await openai.chat.completions.create(
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: question }] },
        withContext({ userId, metadata: { route: '/ask' } }),
      )
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ answer: answer.choices[0]?.message.content }))
    } catch (err) {
      if (err instanceof LLMGuardRateLimitedError) {
        res.writeHead(429, { 'retry-after': String(Math.ceil(err.retryAfterMs / 1000)) }).end(JSON.stringify({ error: err.code }))
      } else if (err instanceof LLMGuardBlockedError) {
        res.writeHead(403).end(JSON.stringify({ error: err.code }))
      } else {
        res.writeHead(502).end(JSON.stringify({ error: 'upstream failed' }))
      }
    }
  })
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const stop = async () => {
    await new Promise<void>((r) => server.close(() => r()))
    await guard.shutdown({ timeoutMs: 5000 })
    await target.close()
  }
  return { url, stop, guard }
}

if (isMain(import.meta.url)) {
  const { url, stop } = await start()
  console.log(`listening on ${url}  (POST /ask, header x-user)`)
  process.once('SIGTERM', () => void stop())
  process.once('SIGINT', () => void stop())
}
