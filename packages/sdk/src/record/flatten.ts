/**
 * Turns OpenAI request and response shapes into the plain text a record stores. Unknown shapes
 * give an empty string rather than throwing: the record is secondary to the caller's call.
 */

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null

/** A message's content: a string, or parts (text, refusal, image, audio, file). */
export function flattenContent(content: unknown): string {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return ''
  const out: string[] = []
  for (const part of content) {
    if (typeof part === 'string') out.push(part)
    else if (isObj(part)) {
      if (typeof part.text === 'string') out.push(part.text)
      else if (typeof part.refusal === 'string') out.push(part.refusal)
      else if (typeof part.type === 'string') out.push(`[${part.type}]`)
    }
  }
  return out.join('\n')
}

export function toolCallsText(calls: unknown): string {
  if (!Array.isArray(calls)) return ''
  const out: string[] = []
  for (const c of calls) {
    if (!isObj(c)) continue
    const fn = isObj(c.function) ? c.function : isObj(c.custom) ? c.custom : undefined
    if (fn) out.push(`[tool call ${String(fn.name ?? '')}(${String(fn.arguments ?? fn.input ?? '')})]`)
  }
  return out.join('\n')
}

/** Chat messages as `role: text` lines. Strings joined as they come, not through an array: this runs on every chat call. */
export function flattenMessages(messages: unknown): string {
  if (!Array.isArray(messages)) return ''
  let out: string | undefined
  for (const m of messages) {
    if (!isObj(m)) continue
    let text = flattenContent(m.content)
    if (m.tool_calls !== undefined) {
      const tools = toolCallsText(m.tool_calls)
      if (tools) text = text ? `${text}\n${tools}` : tools
    }
    const line = `${String(m.role ?? 'user')}: ${text}`
    out = out === undefined ? line : `${out}\n${line}`
  }
  return out ?? ''
}

/** `responses.create` input: a string or a list of items, with optional `instructions`. */
export function flattenResponsesInput(input: unknown, instructions: unknown): string {
  const lines: string[] = []
  if (typeof instructions === 'string' && instructions) lines.push(`system: ${instructions}`)
  if (typeof input === 'string') lines.push(`user: ${input}`)
  else if (Array.isArray(input)) {
    for (const item of input) {
      if (!isObj(item)) continue
      if (item.type === 'function_call') lines.push(`assistant: [tool call ${String(item.name ?? '')}(${String(item.arguments ?? '')})]`)
      else if (item.type === 'custom_tool_call') lines.push(`assistant: [tool call ${String(item.name ?? '')}(${String(item.input ?? '')})]`)
      else if (item.type === 'function_call_output' || item.type === 'custom_tool_call_output') {
        lines.push(`tool: ${typeof item.output === 'string' ? item.output : flattenContent(item.output)}`)
      }
      else if ('content' in item) lines.push(`${String(item.role ?? 'user')}: ${flattenContent(item.content)}`)
    }
  }
  return lines.join('\n')
}

/** Completions prompts and embedding inputs: strings, lists of strings, or token arrays. */
export function flattenInput(input: unknown): string {
  if (typeof input === 'string') return input
  if (!Array.isArray(input)) return ''
  if (input.length > 0 && typeof input[0] === 'number') return `[${input.length} tokens]`
  return input.map((x) => flattenInput(x)).join('\n')
}

/** A chat completion's answer: every choice's text and tool calls. */
export function chatResponseText(choices: unknown): string {
  if (!Array.isArray(choices)) return ''
  let out: string | undefined
  for (const c of choices) {
    if (!isObj(c) || !isObj(c.message)) continue
    const msg = c.message
    let text = flattenContent(msg.content)
    if (!text && typeof msg.refusal === 'string') text = msg.refusal
    if (msg.tool_calls !== undefined) {
      const tools = toolCallsText(msg.tool_calls)
      if (tools) text = text ? `${text}\n${tools}` : tools
    }
    out = out === undefined ? text : `${out}\n${text}`
  }
  return out ?? ''
}

/**
 * A `responses` result: its output items' text (messages with their refusals, tool calls), or
 * `output_text` when there are no items to walk.
 */
export function responsesOutputText(res: Obj): string {
  if (!Array.isArray(res.output)) return typeof res.output_text === 'string' ? res.output_text : ''
  const out: string[] = []
  for (const item of res.output) {
    if (!isObj(item)) continue
    if (item.type === 'message') out.push(flattenContent(item.content))
    else if (item.type === 'function_call') out.push(`[tool call ${String(item.name ?? '')}(${String(item.arguments ?? '')})]`)
    else if (item.type === 'custom_tool_call') out.push(`[tool call ${String(item.name ?? '')}(${String(item.input ?? '')})]`)
  }
  return out.join('\n')
}
