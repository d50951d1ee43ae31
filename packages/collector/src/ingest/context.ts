import { priceOverridesSchema, type ModelPrice } from '@llmguard/shared'
import { z } from 'zod'
import type { Sql } from '../db/connect.js'

export interface ProjectIngestSettings {
  ownerId: string
  sensitiveKeywords: readonly string[]
  priceOverrides: Readonly<Record<string, ModelPrice>>
}

const keywordsSchema = z.array(z.string()).catch([])

/**
 * The per-project inputs of scoring and pricing, cached for a second: ingest is the hot path,
 * and a settings change reaching records a second later is fine.
 */
export class ProjectContextCache {
  private readonly cache = new Map<string, { at: number; value: ProjectIngestSettings }>()

  constructor(
    private readonly sql: Sql,
    private readonly ttlMs = 1_000,
  ) {}

  invalidate(projectId: string): void {
    this.cache.delete(projectId)
  }

  async get(projectId: string): Promise<ProjectIngestSettings | undefined> {
    const hit = this.cache.get(projectId)
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.value
    const [row] = await this.sql<{ ownerId: string; settings: Record<string, unknown> | null }[]>`
      select p.user_id as "ownerId", s.settings
      from projects p left join project_settings s on s.project_id = p.id
      where p.id = ${projectId}`
    if (!row) {
      this.cache.delete(projectId)
      return undefined
    }
    const settings = row.settings ?? {}
    const prices = priceOverridesSchema.safeParse(settings.priceOverrides ?? {})
    const value: ProjectIngestSettings = {
      ownerId: row.ownerId,
      // frozen: the scorer then keeps its keyword matcher with the list itself
      sensitiveKeywords: Object.freeze(keywordsSchema.parse(settings.sensitiveKeywords ?? [])),
      // frozen too: pricing then keeps its model lookups with the overrides
      priceOverrides: Object.freeze(prices.success ? prices.data : {}),
    }
    if (this.cache.size > 10_000) this.cache.clear()
    this.cache.set(projectId, { at: Date.now(), value })
    return value
  }
}
