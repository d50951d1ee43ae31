import { defineConfig } from 'tsup'

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  // import.meta.url (the lazy better-sqlite3 require) in the CJS build
  shims: true,
  // native module and the caller's own client: resolved from the app, never bundled
  external: ['better-sqlite3', 'openai'],
})
