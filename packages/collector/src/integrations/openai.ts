import type OpenAI from 'openai'
import { cutText, rcaAnswerSchema, type RcaAnswer } from '@llmguard/shared'
import { storable } from '../db/text.js'
import { lazyLibrary } from './lazy.js'

/** Loaded when OPENAI_API_KEY is set (~110 ms of start-up otherwise). */
const openaiLib = lazyLibrary<typeof OpenAI>('openai')


/** The model's free-form `metadata` is kept with the analysis: bounded like the rest of it. */
export const MAX_ANSWER_METADATA_CHARS = 8_000
export interface RcaClientOptions {
  apiKey: string
  /** OPENAI_BASE_URL (e.g. an Azure or proxy endpoint, or a loopback fake in tests). */
  baseUrl?: string
  model: string
  timeoutMs: number
}

/** Why an answer could not be used; the caller falls back to the heuristic analysis. */
export class RcaFailure extends Error {
  override readonly name = 'RcaFailure'
  constructor(
    readonly reason: 'timeout' | 'error' | 'invalid_response' | 'aborted',
    message: string,
  ) {
    // the message is stored with the heuristic analysis (jsonb): OpenAI's or a proxy's error text
    // may hold what PostgreSQL cannot store
    super(storable(message))
  }
}

export interface RcaClient {
  readonly model: string
  analyze(system: string, user: string, signal?: AbortSignal): Promise<RcaAnswer>
}

/** The answer's JSON object: models sometimes wrap it in a ```json fence despite being asked not to. */
function extractJson(content: string): unknown {
  const fenced = /```(?:json)?\s*([\s\S]*?)```/i.exec(content)
  const text = (fenced ? fenced[1]! : content).trim()
  return JSON.parse(text)
}

/**
 * Asks the RCA model for the seed's IncidentRCA as JSON and validates it. No
 * `response_format` is sent: RCA_MODEL defaults to gpt-4, which does not accept JSON mode;
 * the answer is validated with zod instead. No retries: a failed analysis falls back at once.
 */
export function createRcaClient(options: RcaClientOptions): RcaClient {
  const withoutKey = (text: string) => (options.apiKey.length >= 8 ? text.split(options.apiKey).join('[redacted]') : text)
  const OpenAIClient = openaiLib()
  const client = new OpenAIClient({
    apiKey: options.apiKey,
    baseURL: options.baseUrl,
    timeout: options.timeoutMs,
    maxRetries: 0,
  })
  return {
    model: options.model,
    async analyze(system, user, signal) {
      let content: string | null | undefined
      try {
        const completion = await client.chat.completions.create(
          {
            model: options.model,
            temperature: 0,
            messages: [
              { role: 'system', content: system },
              { role: 'user', content: user },
            ],
          },
          { signal },
        )
        content = completion.choices[0]?.message?.content
      } catch (err) {
        if (err instanceof OpenAIClient.APIConnectionTimeoutError) throw new RcaFailure('timeout', `no answer within ${options.timeoutMs} ms`)
        if (err instanceof OpenAIClient.APIUserAbortError) throw new RcaFailure('aborted', 'analysis aborted')
        // the detail is stored on the incident, which its owner reads, and logged: the operator's
        // key stays out of it, whatever a proxy in front of OpenAI echoes
        if (err instanceof OpenAIClient.APIError) throw new RcaFailure('error', cutText(withoutKey(`OpenAI answered ${err.status ?? 'no status'}: ${err.message}`), 300))
        throw new RcaFailure('error', cutText(withoutKey((err as Error).message), 300))
      }
      if (!content) throw new RcaFailure('invalid_response', 'the answer had no content')
      let json: unknown
      try {
        json = extractJson(content)
      } catch {
        throw new RcaFailure('invalid_response', 'the answer was not JSON')
      }
      const parsed = rcaAnswerSchema.safeParse(json)
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!
        throw new RcaFailure('invalid_response', `the answer did not match IncidentRCA: ${issue.path.join('.') || '(root)'}: ${issue.message}`)
      }
      if (JSON.stringify(parsed.data.metadata).length > MAX_ANSWER_METADATA_CHARS) {
        throw new RcaFailure('invalid_response', `the answer's metadata is over ${MAX_ANSWER_METADATA_CHARS} characters as JSON`)
      }
      // a NUL or a lone surrogate in the answer would fail the store, and the analysis be paid for again
      return storable(parsed.data)
    },
  }
}
