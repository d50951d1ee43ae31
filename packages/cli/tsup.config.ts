import { defineConfig } from 'tsup'

export default defineConfig({
  // one output file per source file: oclif discovers commands by walking dist/commands
  entry: ['src/**/*.ts'],
  bundle: false,
  format: ['esm'],
  clean: true,
  sourcemap: true,
  target: 'node20',
})
