import { defineConfig } from 'tsup'

export default defineConfig({
  entry: ['src/index.ts', 'src/main.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  clean: true,
  sourcemap: true,
  target: 'node20',
  // migrations are read from disk at run time; see scripts in package.json
  onSuccess: 'node -e "require(\'fs\').cpSync(\'src/db/migrations\', \'dist/migrations\', {recursive: true})"',
})
