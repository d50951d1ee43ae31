import { describe, expect, it } from 'vitest'
import { chatResponseText, flattenContent, flattenMessages } from '../src/record/flatten.js'
import { responseOf, usageOf } from '../src/record/build.js'

describe('flattening requests and answers to text', () => {
  it('chat messages: role lines, content parts, images, refusals and tool calls', () => {
    expect(flattenMessages([])).toBe('')
    expect(flattenMessages(undefined)).toBe('')
    expect(
      flattenMessages([
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'x' } }, 'raw'] },
        { role: 'assistant', content: null, tool_calls: [{ type: 'function', function: { name: 'f', arguments: '{"a":1}' } }, { type: 'custom', custom: { name: 'g', input: 'in' } }] },
        { role: 'assistant', content: [{ type: 'refusal', refusal: 'no' }], tool_calls: [{ function: { name: 'h' } }] },
        { content: 'no role' },
        'not a message',
        { role: 'tool', content: '' },
      ]),
    ).toBe(
      'system: Be brief.\nuser: look\n[image_url]\nraw\nassistant: [tool call f({"a":1})]\n[tool call g(in)]\nassistant: no\n[tool call h()]\nuser: no role\ntool: ',
    )
    expect(flattenContent(42)).toBe('')
  })

  it('chat answers: every choice, refusals, tool calls', () => {
    expect(chatResponseText(undefined)).toBe('')
    expect(chatResponseText([{ message: { content: 'one' } }])).toBe('one')
    expect(
      chatResponseText([
        { index: 0, message: { content: 'a' } },
        { index: 1, message: { content: null, refusal: 'nope' } },
        { index: 2, message: { content: 'c', tool_calls: [{ function: { name: 't', arguments: '{}' } }] } },
        { index: 3 },
        { index: 4, message: { content: null, tool_calls: [{ function: { name: 'u', arguments: 'x' } }] } },
      ]),
    ).toBe('a\nnope\nc\n[tool call t({})]\n[tool call u(x)]')
  })

  it('usage: both shapes, only valid counts, parts never over their whole', () => {
    expect(usageOf(undefined)).toEqual({})
    expect(usageOf({ prompt_tokens: 9, completion_tokens: 3, total_tokens: 12, prompt_tokens_details: { cached_tokens: 2 }, completion_tokens_details: { reasoning_tokens: 1 } })).toEqual({
      promptTokens: 9,
      completionTokens: 3,
      tokens: 12,
      cachedTokens: 2,
      reasoningTokens: 1,
    })
    expect(usageOf({ input_tokens: 5, output_tokens: 4, total_tokens: 9, input_tokens_details: { cached_tokens: 6 }, output_tokens_details: { reasoning_tokens: 4 } })).toEqual({
      promptTokens: 5,
      completionTokens: 4,
      tokens: 9,
      reasoningTokens: 4,
    })
    expect(usageOf({ prompt_tokens: -1, completion_tokens: 1.5, total_tokens: '3' })).toEqual({})
    expect(responseOf('chat.completions', { choices: [{ message: { content: 'hi' } }], usage: { prompt_tokens: 1 } })).toEqual({ text: 'hi', usage: { promptTokens: 1 } })
    expect(responseOf('embeddings', { data: [], usage: { prompt_tokens: 2, total_tokens: 2 } })).toEqual({ text: '', usage: { promptTokens: 2, tokens: 2 } })
    expect(responseOf('completions', { choices: [{ text: 'x' }, { text: 'y' }, 3] })).toEqual({ text: 'x\ny\n', usage: {} })
    expect(responseOf('chat.completions', 'plain')).toEqual({ text: 'plain', usage: {} })
  })
})
