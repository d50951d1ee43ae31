#!/usr/bin/env node
import { ConfigError, loadConfig } from './config.js'
import { startCollector } from './collector.js'
import { DataDirLockedError } from './db/lock.js'
import { describeFailure, installCrashHandlers } from './crash.js'

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
  // Signals may arrive while the database is still opening (initdb takes seconds): remember
  // them and stop as soon as start-up is done, so PGlite closes cleanly and the lock is released.
  // On PostgreSQL nothing of ours needs closing before start-up is done, which may be a long
  // wait (another collector's migrations, an unanswering server): exit now, the server rolls a
  // migration under way back.
  let signalled: NodeJS.Signals | undefined
  let stop: (() => void) | undefined
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      process.stderr.write(`llmguard-collector: second ${signal}: exiting now\n`)
      process.exit(130)
    }
    signalled = signal
    if (stop) return stop()
    if (config.database.url) {
      process.stderr.write(`llmguard-collector: ${signal} during start-up: exiting\n`)
      process.exit(0)
    }
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
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
  installCrashHandlers(running.logger, () => running.stop())
  stop = () => {
    running.logger.info({ signal: signalled }, 'stopping')
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        running.logger.error({ err }, 'error while stopping')
        process.exit(1)
      },
    )
  }
  if (signalled) stop()
}

main().catch((err: unknown) => {
  process.stderr.write(`llmguard-collector: failed to start: ${describeFailure(err)}\n`)
  process.exit(1)
})
