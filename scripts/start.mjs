// `pnpm start`: the collector on the embedded database (no configuration needed), built first if needed.
// PORT, LLMGUARD_DATA_DIR and every other variable in docs/self-hosting.md are honoured.
import { pathToFileURL } from 'node:url'
import { ensureCollectorBuilt } from './lib/build.mjs'

const main = ensureCollectorBuilt()
await import(pathToFileURL(main).href)
