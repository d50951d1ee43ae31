import { z } from 'zod'
import { errorEnvelopeSchema } from '@llmguard/shared'
import type { RouteDef } from './route.js'

type JsonSchema = Record<string, unknown>

/** Where a converted input shape refers to a `.meta({ id })` schema, until names are settled. */
const INPUT_REF = '#/$input/'
const OUTPUT_REF = '#/components/schemas/'

/**
 * Schemas with a `.meta({ id })` come out of zod as `$defs` entries; they are collected per
 * direction and hoisted into components.schemas by `components()`. An id's input shape (request
 * bodies, parameters) and output shape (responses) differ where defaults apply: `reset_settings`
 * may omit `parameters` in a request but always has them in a response.
 */
function converter() {
  const defs = { input: new Map<string, string>(), output: new Map<string, string>() }
  function toSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
    const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema
    // refs stay apart by direction until the names are known
    const { $schema: _ignored, $defs, ...rest } = JSON.parse(
      JSON.stringify(json).replaceAll('"#/$defs/', `"${io === 'input' ? INPUT_REF : OUTPUT_REF}`),
    ) as JsonSchema & { $defs?: Record<string, JsonSchema> }
    for (const [id, def] of Object.entries($defs ?? {})) defs[io].set(id, JSON.stringify(def))
    return rest
  }

  /**
   * The components, and a function that points a document's input refs at them: an input shape
   * equal to its output shape shares its name, one that differs is named `${id}Input` (so is
   * one that refers to such a shape: its refs differ).
   */
  function components(): { schemas: Record<string, JsonSchema>; resolve<T>(doc: T): T } {
    const asOutput = (text: string) => text.replaceAll(`"${INPUT_REF}`, `"${OUTPUT_REF}`)
    const apart = new Set<string>()
    for (const [id, text] of defs.input) if (defs.output.has(id) && asOutput(text) !== defs.output.get(id)) apart.add(id)
    for (let grew = true; grew; ) {
      grew = false
      for (const [id, text] of defs.input) {
        if (!apart.has(id) && defs.output.has(id) && [...apart].some((a) => text.includes(`"${INPUT_REF}${a}"`))) {
          apart.add(id)
          grew = true
        }
      }
    }
    const name = (id: string) => (apart.has(id) ? `${id}Input` : id)
    const resolve = <T>(doc: T): T =>
      JSON.parse(JSON.stringify(doc).replace(/"#\/\$input\/([^"]+)"/g, (_m, id: string) => `"${OUTPUT_REF}${name(id)}"`)) as T
    const schemas: Record<string, JsonSchema> = {}
    for (const [id, text] of defs.output) schemas[id] = JSON.parse(text) as JsonSchema
    for (const [id, text] of defs.input) if (!defs.output.has(id) || apart.has(id)) schemas[name(id)] = resolve(JSON.parse(text) as JsonSchema)
    return { schemas, resolve }
  }

  return { toSchema, components }
}

/** Query and path schemas become one OpenAPI parameter per property. */
function parameters(toSchema: ReturnType<typeof converter>['toSchema'], schema: z.ZodType | undefined, where: 'path' | 'query'): JsonSchema[] {
  if (!schema) return []
  const json = toSchema(schema, 'input')
  const props = (json.properties ?? {}) as Record<string, JsonSchema>
  const required = new Set((json.required as string[] | undefined) ?? [])
  return Object.entries(props).map(([name, prop]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    schema: prop,
    ...(typeof prop.description === 'string' ? { description: prop.description } : {}),
  }))
}

const SECURITY: Record<RouteDef['auth'], JsonSchema[]> = {
  none: [],
  user: [{ bearerJwt: [] }],
  admin: [{ bearerJwt: [] }],
  apiKey: [{ apiKey: [] }, { apiKeyHeader: [] }],
  userOrApiKey: [{ bearerJwt: [] }, { apiKey: [] }, { apiKeyHeader: [] }],
}

/** The OpenAPI 3.1 document of the registered routes, built from their zod schemas. */
export function buildOpenApi(routes: RouteDef[], version: string): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {}
  const { toSchema, components } = converter()
  const envelope = toSchema(errorEnvelopeSchema, 'output')
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
    const responses: Record<string, JsonSchema> = {}
    for (const [status, schema] of Object.entries(route.responses)) {
      responses[status] =
        schema === null
          ? { description: 'No content' }
          : { description: 'Success', content: { 'application/json': { schema: toSchema(schema, 'output') } } }
    }
    responses.default = { description: 'Error envelope', content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorEnvelope' } } } }
    const operation: JsonSchema = {
      operationId: `${route.method.toLowerCase()}${path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      summary: route.summary,
      tags: route.tags,
      security: SECURITY[route.auth],
      parameters: [...parameters(toSchema, route.params, 'path'), ...parameters(toSchema, route.query, 'query')],
      responses,
    }
    if (route.body) {
      // a body the route can do without (portal's {returnUrl?}, refresh with the cookie) is optional
      const schema = toSchema(route.documentedBody ?? route.body, 'input')
      operation.requestBody = { required: !route.body.safeParse(undefined).success, content: { 'application/json': { schema } } }
    } else if (route.rawBody) {
      operation.requestBody = { required: true, content: { 'application/json': { schema: {} } } }
    }
    ;(paths[path] ??= {})[route.method.toLowerCase()] = operation
  }
  const { schemas, resolve } = components()
  return {
    openapi: '3.1.0',
    info: {
      title: 'LLMGuard collector API',
      version,
      description: 'Self-hosted LLM observability and guardrails. Errors use the envelope in components.schemas.ErrorEnvelope.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    paths: resolve(paths),
    components: {
      schemas: { ErrorEnvelope: envelope, ...schemas },
      securitySchemes: {
        bearerJwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A user access token from /v1/auth/login' },
        apiKey: { type: 'http', scheme: 'bearer', description: 'A project API key (lg_…) as a Bearer token' },
        apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'A project API key (lg_…)' },
      },
    },
  }
}
