import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { loadConfig } from '../src/config.js'
import { startCollector } from '../src/collector.js'
import { createLogger } from '../src/logger.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** A migrated embedded data dir; each test collector starts on a copy of it. */
    pgliteTemplateDir: string
  }
}

/**
 * Creating an embedded database (initdb) takes seconds; copying a migrated one takes a fraction
 * of that. So one template is made per run and every test file starts on a fresh copy.
 */
export default async function setup(project: TestProject): Promise<() => void> {
  const root = mkdtempSync(join(tmpdir(), 'llmguard-template-'))
  const dataDir = join(root, 'data')
  const collector = await startCollector(
    loadConfig({ NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', LLMGUARD_DATA_DIR: dataDir, LOG_LEVEL: 'silent' }),
    { logger: createLogger('silent') },
  )
  await collector.stop()
  project.provide('pgliteTemplateDir', dataDir)
  return () => rmSync(root, { recursive: true, force: true })
}
