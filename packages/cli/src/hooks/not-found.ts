import type { Hook } from '@oclif/core'
import { failUsage, lookupCommand, unexpectedArguments, unknownCommand } from '../lib/command-ids.js'

/**
 * No command of this id. oclif reads every word of `keys create prod` into the id when the
 * command takes no arguments, so the longest command it starts with is the one meant, and the
 * rest are arguments it does not take. Said like every other error (oclif's own message is not).
 */
const hook: Hook.CommandNotFound = async function (opts) {
  const words = opts.id.split(':')
  const found = lookupCommand(opts.config, words)
  failUsage(opts.argv, found ? unexpectedArguments(opts.config, found) : unknownCommand(opts.config, words))
}

export default hook
