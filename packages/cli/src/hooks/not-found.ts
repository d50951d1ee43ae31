import type { Hook } from '@oclif/core'
import { EXIT_USAGE } from '../lib/errors.js'

/**
 * An unknown command, said like every other error: `Error: … [USAGE]` on stderr and exit 2, or
 * the JSON error envelope on stdout with --json (oclif's own message is neither).
 */
const hook: Hook.CommandNotFound = async function (opts) {
  const shown = opts.id.replaceAll(':', ' ')
  const message = `unknown command "${shown}" (see \`${opts.config.bin} --help\` for the commands)`
  if (opts.argv?.includes('--json')) process.stdout.write(`${JSON.stringify({ error: { code: 'USAGE', message } }, null, 2)}\n`)
  else process.stderr.write(`Error: ${message}\n`)
  this.exit(EXIT_USAGE)
}

export default hook
