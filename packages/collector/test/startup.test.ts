import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const SRC = fileURLToPath(new URL('../src', import.meta.url))

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []))
}

describe('start-up', () => {
  it('never imports stripe or openai at load: they cost ~250 ms of every start and are loaded when configured', () => {
    const files = sources(SRC)
    expect(files.length).toBeGreaterThan(40)
    // a value import of either (an import type is erased); no quote in between, so one statement
    const eager = files.filter((f) => /^import (?!type\b)[^'"]*from '(stripe|openai)'/m.test(readFileSync(f, 'utf8')))
    expect(eager.map((f) => f.slice(SRC.length + 1))).toEqual([])
  })
})
