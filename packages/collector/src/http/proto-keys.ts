import { z } from 'zod'

/**
 * A key `__proto__` in a JSON body's map. JSON.parse makes it an own key, but zod rebuilds a
 * record key by key by assignment, which sets the copy's prototype instead: the key and its
 * value vanished without a word (a 201 or 200 for what was not stored). Such a key is refused by
 * name instead, at the top level of each map a body names. Nested objects are not rebuilt: their
 * keys are kept as sent.
 */
export interface ProtoKeyRule {
  /** The body's field holding a map. */
  field: string
  message: string
}

export interface ProtoKeyProblem {
  path: string[]
  message: string
}

/** The maps of `body` (by `rules`) that hold a key `__proto__`. */
export function protoKeyProblems(body: unknown, rules: readonly ProtoKeyRule[]): ProtoKeyProblem[] {
  if (typeof body !== 'object' || body === null) return []
  const problems: ProtoKeyProblem[] = []
  for (const { field, message } of rules) {
    const map = (body as Record<string, unknown>)[field]
    if (typeof map === 'object' && map !== null && Object.hasOwn(map, '__proto__')) problems.push({ path: [field, '__proto__'], message })
  }
  return problems
}

/** `schema`, with a `__proto__` key in the maps `rules` name refused first (a 400 naming it). */
export function refusingProtoKeys<T extends z.ZodType>(schema: T, rules: readonly ProtoKeyRule[]) {
  return z
    .unknown()
    .superRefine((input, ctx) => {
      for (const problem of protoKeyProblems(input, rules)) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message })
    })
    .pipe(schema)
}

/** A record's metadata (ingest), and a project's (settings). */
export const METADATA_PROTO_KEY: ProtoKeyRule = { field: 'metadata', message: 'a metadata key named "__proto__" cannot be stored; rename it' }
