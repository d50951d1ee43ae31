import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

function readVersion(): string {
  // src/version.ts and dist/*.js both sit one level below package.json
  try {
    return (require('../package.json') as { version: string }).version
  } catch {
    return '0.0.0'
  }
}

export const VERSION = readVersion()
