#!/usr/bin/env node
// Runs the built commands (dist/): ts-node cannot load ESM TypeScript on Node 20.
import { execute } from '@oclif/core'

await execute({ dir: import.meta.url })
