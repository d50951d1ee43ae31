import type { ProjectSettings } from '@llmguard/shared'
import type { Db, Sql } from '../db/connect.js'
import { parseStoredSettings } from '../settings/service.js'

export type Thresholds = Pick<
  ProjectSettings,
  | 'incidentLatencyMs'
  | 'incidentErrorRatePercent'
  | 'incidentRiskScore'
  | 'incidentRiskConsecutive'
  | 'incidentCostSpikePercent'
  | 'incidentMinRequests'
>

export async function readThresholds(sql: Db, projectId: string): Promise<Thresholds> {
  const [row] = await sql<{ settings: Record<string, unknown> }[]>`select settings from project_settings where project_id = ${projectId}`
  return parseStoredSettings(row?.settings)
}

/**
 * The incident thresholds of each project, cached for a second: the rules run on every
 * ingested batch. A settings change made through this instance applies from the next batch
 * (`invalidate`); one made through another instance within the second.
 */
export class ThresholdCache {
  private readonly cache = new Map<string, { at: number; value: Thresholds }>()
  /** Bumped by every invalidation: a read that started before one must not fill the cache. */
  private generation = 0

  constructor(
    private readonly sql: Sql,
    private readonly ttlMs = 1_000,
  ) {}

  async get(projectId: string): Promise<Thresholds> {
    const hit = this.cache.get(projectId)
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.value
    const generation = this.generation
    const value = await readThresholds(this.sql, projectId)
    if (generation === this.generation) {
      if (this.cache.size > 10_000) this.cache.clear()
      this.cache.set(projectId, { at: Date.now(), value })
    }
    return value
  }

  invalidate(projectId: string): void {
    this.generation++
    this.cache.delete(projectId)
  }
}
