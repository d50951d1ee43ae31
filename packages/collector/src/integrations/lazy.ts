import { createRequire } from 'node:module'

const load = createRequire(import.meta.url)

/**
 * A library loaded on its first use instead of at start-up (its CommonJS build; the `default`
 * export when it has one): the integrations' SDKs cost a start ~100–150 ms each, which an
 * install that does not configure them should not pay.
 */
export function lazyLibrary<T>(id: string): () => T {
  let lib: T | undefined
  return () => {
    if (lib === undefined) {
      const mod = load(id) as { default?: T } & T
      lib = mod.default ?? mod
    }
    return lib
  }
}
