import { Args } from '@oclif/core'
import { BaseCommand } from '../base.js'
import { lookupCommand, unknownCommand } from '../lib/command-ids.js'
import { usage } from '../lib/errors.js'
import CliHelp from '../lib/help.js'

export interface HelpResult {
  /** The command or topic shown (`logs search`), or null for the list of all. */
  command: string | null
  help: string
}

export default class HelpCommand extends BaseCommand<typeof HelpCommand> {
  static override summary = 'Show the help of a command or topic (the same as COMMAND --help)'
  static override examples = ['<%= config.bin %> help', '<%= config.bin %> help logs search', '<%= config.bin %> help incidents']
  static override args = { command: Args.string({ description: 'a command or topic, e.g. logs search', multiple: true }) }

  async run(): Promise<HelpResult> {
    const words = this.args.command ?? []
    const found = words.length ? lookupCommand(this.config, words, { topics: true }) : undefined
    if (words.length && (!found || (found.kind === 'topic' && found.extra.length))) throw usage(unknownCommand(this.config, words))
    const help = new CliHelp(this.config, this.config.pjson.oclif.helpOptions ?? this.config.pjson.helpOptions)
    help.collected = []
    await help.showHelp(found ? found.id.split(':') : [])
    const text = help.collected.join('\n')
    this.log(text)
    return { command: found ? found.id.replaceAll(':', ' ') : null, help: text }
  }
}
