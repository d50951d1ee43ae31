import { isDeepStrictEqual } from 'node:util'
import type { Policy, ProjectSettings } from '@llmguard/shared'
import type { Db, Sql } from '../db/connect.js'
import { notFound } from '../http/errors.js'
import { parseStoredSettings } from '../settings/service.js'
import * as store from './store.js'

/** A policy without its version: what settings and overlays compute. */
export type PolicyBody = Omit<Policy, 'version'>

/**
 * A layer over the settings-built policy, e.g. the active remediations of a project
 * (switch_model → modelOverrides, disable_endpoint → disabledEndpoints, …). It runs inside the
 * read transaction, so what it reads is consistent with the version. Whoever changes what an
 * overlay reads must call `bumpVersion` in the same transaction.
 */
export type PolicyOverlay = (db: Db, projectId: string, policy: PolicyBody) => Promise<PolicyBody>

/** The part of the policy that comes from project settings (SPEC "Policy"). */
export function policyFromSettings(settings: ProjectSettings): PolicyBody {
  return {
    modelOverrides: {},
    // a blank one (`llmguard settings set systemPrompt=`) is none: the SDK would otherwise put
    // an empty system prompt in place of every call's own
    systemPrompt: settings.systemPrompt?.trim() ? settings.systemPrompt : null,
    disabledEndpoints: [],
    userRateLimits: {},
    safetyThreshold: settings.safetyThreshold,
    blockOnRisk: settings.blockOnRisk,
    rateLimit: settings.rateLimit,
  }
}

/**
 * How long a cached policy is served without asking the database whether its version moved.
 * Changes made through this instance drop the entry at once; other instances see them within
 * this time. SDKs poll the policy, so this keeps that poll off the database.
 */
const FRESH_MS = 250
const MAX_CACHED = 10_000

export function createPolicyService({ sql }: { sql: Sql }) {
  const overlays: PolicyOverlay[] = []
  const cache = new Map<string, { policy: Policy; checkedAt: number }>()
  // bumped by every invalidation: a computation that started before one must not fill the cache
  let generation = 0
  const invalidate = (projectId: string) => {
    generation++
    cache.delete(projectId)
  }

  const compute = (projectId: string): Promise<Policy> =>
    sql.begin('isolation level repeatable read', async (tx) => {
      const source = await store.findPolicySource(tx, projectId)
      if (!source) throw notFound('project')
      let body = policyFromSettings(parseStoredSettings(source.settings ?? undefined))
      for (const overlay of overlays) body = await overlay(tx, projectId, body)
      return { version: source.policy_version, ...body }
    }) as Promise<Policy>

  return {
    /** Adds a layer applied, in order of registration, over the settings-built policy. */
    addOverlay(overlay: PolicyOverlay): void {
      overlays.push(overlay)
    },

    /** The effective policy of a project (cached per instance; see FRESH_MS). */
    async get(projectId: string): Promise<Policy> {
      const hit = cache.get(projectId)
      const now = Date.now()
      if (hit && now - hit.checkedAt < FRESH_MS) return hit.policy
      const started = generation
      if (hit) {
        const version = await store.findPolicyVersion(sql, projectId)
        if (version === hit.policy.version && started === generation) {
          hit.checkedAt = now
          return hit.policy
        }
      }
      const policy = await compute(projectId)
      if (started === generation) {
        if (cache.size >= MAX_CACHED) cache.clear()
        cache.set(projectId, { policy, checkedAt: now })
      }
      return policy
    },

    /** Drops this instance's cached policy of a project (after a change commits). */
    invalidate,

    /** Every change of the effective policy calls this in the transaction that makes it. */
    async bumpVersion(db: Db, projectId: string): Promise<number> {
      const version = await store.bumpPolicyVersion(db, projectId)
      invalidate(projectId)
      return version
    },

    /**
     * Settings hook: a change the effective policy shows bumps its version, any other change does
     * not (a setting an overlay hides, e.g. a system prompt under change_system_prompt, is none).
     */
    async settingsChanged(db: Db, projectId: string, before: ProjectSettings, after: ProjectSettings): Promise<void> {
      let was = policyFromSettings(before)
      let now = policyFromSettings(after)
      if (isDeepStrictEqual(was, now)) return
      for (const overlay of overlays) {
        was = await overlay(db, projectId, was)
        now = await overlay(db, projectId, now)
      }
      if (!isDeepStrictEqual(was, now)) {
        await store.bumpPolicyVersion(db, projectId)
        invalidate(projectId)
      }
    },
  }
}

export type PolicyService = ReturnType<typeof createPolicyService>
