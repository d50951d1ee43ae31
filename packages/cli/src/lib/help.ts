import { format } from 'node:util'
import { Help } from '@oclif/core'
import { failUsage, lookupCommand, unknownCommand } from './command-ids.js'

/** The words naming a command in `--help`'s argv: up to the first flag or NAME=VALUE, as oclif reads them. */
export const subjectWords = (argv: readonly string[]) => {
  const end = argv.findIndex((a) => a.startsWith('-') || a.includes('='))
  return argv.slice(0, end === -1 ? argv.length : end)
}

/**
 * oclif's help (the `helpClass` of package.json, so `--help` uses it too), finding the command
 * as the not-found hook does: `keys create prod --help` is the help of `keys create`, and an
 * unknown command is the usual usage error rather than oclif's own message.
 */
export default class CliHelp extends Help {
  /** Set by the `help` command, which prints the text itself (so --json can carry it). */
  collected: string[] | undefined

  protected override log(...args: string[]): void {
    if (this.collected) this.collected.push(format(...args))
    else super.log(...args)
  }

  override async showHelp(argv: string[]): Promise<void> {
    const words = subjectWords(argv.filter((a) => a !== '--help'))
    if (!words.length) return super.showHelp([])
    const found = lookupCommand(this.config, words, { topics: true })
    // after a topic, another word is a misspelt command of it, not an argument
    if (!found || (found.kind === 'topic' && found.extra.length)) failUsage(argv, unknownCommand(this.config, words))
    const command = found.kind === 'command' && this.config.findCommand(found.id)
    // straight to the command's help: oclif's own lookup skips the word `help` (`help --help`)
    return command ? this.showCommandHelp(command) : super.showHelp(found.id.split(':'))
  }
}
