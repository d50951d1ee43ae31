#!/usr/bin/env node
import { ConfigError, loadConfig } from './config.js'
import { startCollector } from './collector.js'
import { DataDirLockedError } from './db/lock.js'

/** Process entry: config → database → migrations → server → jobs; graceful stop on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config
  try {
    config = loadConfig(process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`llmguard-collector: ${err.message}\n`)
      process.exit(78) // EX_CONFIG
    }
    throw err
  }
  let collector
  try {
    collector = await startCollector(config)
  } catch (err) {
    if (err instanceof DataDirLockedError) {
      process.stderr.write(`llmguard-collector: ${err.message}\n`)
      process.exit(75) // EX_TEMPFAIL
    }
    throw err
  }
  const running = collector
  let signalled = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      running.logger.warn({ signal }, 'second signal: exiting now')
      process.exit(130)
    }
    signalled = true
    running.logger.info({ signal }, 'stopping')
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        running.logger.error({ err }, 'error while stopping')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}

main().catch((err: unknown) => {
  process.stderr.write(`llmguard-collector: failed to start: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
