import { policySchema } from '@llmguard/shared'
import { projectIdOf } from '../auth/guard.js'
import { defineRoute, reply, type RouteDef } from '../http/route.js'
import type { PolicyService } from './service.js'

/** True when an If-None-Match header names this ETag (a list, weak forms and * included). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false
  return header.split(',').some((tag) => {
    const t = tag.trim()
    return t === '*' || t === etag || t === `W/${etag}`
  })
}

export function policyRoutes({ policy }: { policy: PolicyService }): RouteDef[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/v1/llm/policy',
      auth: 'apiKey',
      summary: "The key's project policy for the SDK; ETag \"<version>\", 304 on a matching If-None-Match",
      tags: ['llm'],
      responses: { 200: policySchema, 304: null },
      handler: async (ctx) => {
        const current = await policy.get(projectIdOf(ctx))
        const etag = `"${current.version}"`
        // no-store everywhere else; here a client may keep it but must revalidate
        const headers = { etag, 'cache-control': 'no-cache' }
        if (etagMatches(ctx.headers['if-none-match'], etag)) return reply(304, undefined, headers)
        return reply(200, current, headers)
      },
    }),
  ]
}
