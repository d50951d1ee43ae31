import { z } from 'zod'
import { errorEnvelopeSchema } from '@llmguard/shared'
import type { RouteDef } from './route.js'

type JsonSchema = Record<string, unknown>

/**
 * Schemas with a `.meta({ id })` come out of zod as `$defs` entries; they are hoisted into
 * components.schemas (collected in `components`) and their refs rewritten to point there.
 */
function converter(components: Record<string, JsonSchema>) {
  return (schema: z.ZodType, io: 'input' | 'output'): JsonSchema => {
    const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema
    const { $schema: _ignored, $defs, ...rest } = JSON.parse(
      JSON.stringify(json).replaceAll('"#/$defs/', '"#/components/schemas/'),
    ) as JsonSchema & { $defs?: Record<string, JsonSchema> }
    for (const [id, def] of Object.entries($defs ?? {})) {
      // input and output shapes of one id differ where defaults apply; keep both apart
      const name = io === 'input' && components[id] && JSON.stringify(components[id]) !== JSON.stringify(def) ? `${id}Input` : id
      components[name] = def
    }
    return rest
  }
}

/** Query and path schemas become one OpenAPI parameter per property. */
function parameters(toSchema: ReturnType<typeof converter>, schema: z.ZodType | undefined, where: 'path' | 'query'): JsonSchema[] {
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
  const components: Record<string, JsonSchema> = {}
  const toSchema = converter(components)
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
  return {
    openapi: '3.1.0',
    info: {
      title: 'LLMGuard collector API',
      version,
      description: 'Self-hosted LLM observability and guardrails. Errors use the envelope in components.schemas.ErrorEnvelope.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    paths,
    components: {
      schemas: { ErrorEnvelope: envelope, ...components },
      securitySchemes: {
        bearerJwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A user access token from /v1/auth/login' },
        apiKey: { type: 'http', scheme: 'bearer', description: 'A project API key (lg_…) as a Bearer token' },
        apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'A project API key (lg_…)' },
      },
    },
  }
}
