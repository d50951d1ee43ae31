import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { valueOrPrompt } from '../src/lib/prompt.js'

// a terminal whose input the test controls: stdin is swapped for a stream claiming to be a TTY
const realStdin = Object.getOwnPropertyDescriptor(process, 'stdin')!
const stderrTty = process.stderr.isTTY
let input: PassThrough & { isTTY?: boolean }

function fakeTerminal(): void {
  input = Object.assign(new PassThrough(), { isTTY: true })
  Object.defineProperty(process, 'stdin', { value: input, configurable: true })
  process.stderr.isTTY = true
}

afterEach(() => {
  Object.defineProperty(process, 'stdin', realStdin)
  process.stderr.isTTY = stderrTty
})

describe('prompts', () => {
  it('take the typed answer', async () => {
    fakeTerminal()
    const answer = valueOrPrompt(undefined, 'email', 'Email')
    input.write('you@example.com\n')
    await expect(answer).resolves.toBe('you@example.com')
  })

  it('end of input (Ctrl-D) is a usage error, not a process that exits without a word', async () => {
    fakeTerminal()
    const answer = valueOrPrompt(undefined, 'email', 'Email')
    input.end()
    await expect(answer).rejects.toMatchObject({ code: 'USAGE', message: 'no answer (end of input)', exitCode: 2 })
  })
})
