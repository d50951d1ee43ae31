import { createInterface } from 'node:readline'
import { usage } from './errors.js'

/** Prompts only on an interactive terminal; elsewhere a missing answer is a usage error naming the flag. */
export const interactive = () => Boolean(process.stdin.isTTY && process.stderr.isTTY)

function ask(question: string, hidden: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true })
    if (hidden) {
      // echo nothing of the typed password
      const out = rl as unknown as { _writeToOutput: (s: string) => void }
      out._writeToOutput = (s: string) => {
        if (s.startsWith(question)) process.stderr.write(question)
        else if (/\r|\n/.test(s)) process.stderr.write('\n')
      }
    }
    let answered = false
    rl.on('SIGINT', () => {
      rl.close()
      reject(usage('cancelled'))
    })
    // end of input (Ctrl-D) before an answer: nothing more will come
    rl.on('close', () => {
      if (!answered) reject(usage('no answer (end of input)'))
    })
    rl.question(question, (answer) => {
      answered = true
      rl.close()
      resolve(answer.trim())
    })
  })
}

/** The flag's value, or an answer typed at the terminal, or a usage error when neither is possible. */
export async function valueOrPrompt(
  value: string | undefined,
  flag: string,
  question: string,
  options: { hidden?: boolean; default?: string } = {},
): Promise<string> {
  if (value !== undefined && value !== '') return value
  if (!interactive()) {
    if (options.default !== undefined) return options.default
    throw usage(`missing --${flag} (there is no terminal to ask on)`)
  }
  const suffix = options.default ? ` (${options.default})` : ''
  for (;;) {
    const answer = await ask(`${question}${suffix}: `, options.hidden ?? false)
    if (answer) return answer
    if (options.default !== undefined) return options.default
  }
}

/** Yes/no; `assumed` answers without a terminal (undefined there = usage error naming the flag). */
export async function confirm(question: string, flag: string, assumed?: boolean): Promise<boolean> {
  if (!interactive()) {
    if (assumed !== undefined) return assumed
    throw usage(`refusing without --${flag} (there is no terminal to ask on)`)
  }
  const answer = (await ask(`${question} [y/N] `, false)).toLowerCase()
  return answer === 'y' || answer === 'yes'
}
