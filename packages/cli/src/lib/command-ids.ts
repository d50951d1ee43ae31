import { Errors, type Interfaces } from '@oclif/core'
import { EXIT_USAGE } from './errors.js'

export interface Found {
  /** The command's or topic's id (`keys:create`). */
  id: string
  kind: 'command' | 'topic'
  /** The words after it (`prod` of `keys create prod`): arguments, or a misspelt subcommand after a topic. */
  extra: string[]
}

/**
 * The longest command (or, with `topics`, topic) the leading words name: `keys create prod` is
 * the command `keys create` and the word `prod`; undefined when not even the first word is one.
 */
export function lookupCommand(config: Interfaces.Config, words: readonly string[], options: { topics?: boolean } = {}): Found | undefined {
  for (let n = words.length; n > 0; n--) {
    const id = words.slice(0, n).join(':')
    if (config.findCommand(id)) return { id, kind: 'command', extra: words.slice(n) }
    if (options.topics && config.findTopic(id)) return { id, kind: 'topic', extra: words.slice(n) }
  }
  return undefined
}

export const unknownCommand = (config: Interfaces.Config, words: readonly string[]) =>
  `unknown command "${words.join(' ')}" (see \`${config.bin} --help\` for the commands)`

/** Said as oclif says it for a command that takes no more arguments. */
export const unexpectedArguments = (config: Interfaces.Config, found: Found) =>
  `Unexpected argument${found.extra.length > 1 ? 's' : ''}: ${found.extra.join(', ')} (see \`${config.bin} ${found.id.replaceAll(':', ' ')} --help\`)`

/**
 * A usage error outside any command (no command's `catch` to say it): like every other error,
 * `Error: …` on stderr, or the JSON error envelope on stdout with --json; then exit 2.
 */
export function failUsage(argv: readonly string[] | undefined, message: string): never {
  if (argv?.includes('--json')) process.stdout.write(`${JSON.stringify({ error: { code: 'USAGE', message } }, null, 2)}\n`)
  else process.stderr.write(`Error: ${message}\n`)
  return Errors.exit(EXIT_USAGE)
}
