import { modelOverrideOf, type Policy } from '@llmguard/shared'
import type { Annotator, ScoredRecord } from '../ingest/pipeline.js'

/**
 * What the active policy forbade about a call that was made anyway, e.g. by a client that does
 * not enforce the policy (an old SDK, raw HTTP, another language): a disabled endpoint, or a
 * model a switch_model moved away from. Null when nothing. Calls the SDK blocked itself are
 * recorded as blocked errors and never count.
 */
export function violationOf(policy: Pick<Policy, 'disabledEndpoints' | 'modelOverrides'>, record: ScoredRecord): Record<string, unknown> | null {
  if (record.metadata && typeof record.metadata.llmguardBlocked === 'string') return null
  const out: Record<string, unknown> = {}
  if (record.endpoint !== undefined && policy.disabledEndpoints.includes(record.endpoint)) out.disabledEndpoint = record.endpoint
  // the SDK never switches embeddings models (the vectors would change shape)
  if (record.endpoint !== 'embeddings') {
    const asked = record.requestedModel ?? record.model
    const target = modelOverrideOf(policy.modelOverrides, asked)
    if (target !== undefined && target !== record.model) out.switchedModel = { model: record.model, expected: target }
  }
  return Object.keys(out).length ? out : null
}

/** How long another instance's change may take to reach this instance's violation flags. */
export const POLICY_CACHE_MS = 1_000

/**
 * A call made within this long after the policy changed is never flagged: an SDK applies a change
 * only at its next policy refresh (every 30 s by default), and a call made before the change (an
 * outbox shipping late, say) broke no rule. Judged on the record's own `timestamp`.
 */
export const POLICY_GRACE_MS = 30_000

/** The effective policy and when the fields violations are about last changed (epoch ms). */
export interface PolicyInForce {
  policy: Policy
  changedAt: number
}

/**
 * The ingest annotator: flags each record against the project's effective policy. The policy is
 * cached per project for a second (a batch must not cost a policy read), and dropped at once
 * when this instance changes it.
 */
export function policyViolationAnnotator(getPolicy: (projectId: string) => Promise<PolicyInForce>, now = () => Date.now()) {
  const cache = new Map<string, { policy: Promise<PolicyInForce>; at: number }>()
  const annotate: Annotator = async (records, ctx) => {
    let hit = cache.get(ctx.projectId)
    if (!hit || now() - hit.at >= POLICY_CACHE_MS) {
      hit = { policy: getPolicy(ctx.projectId), at: now() }
      cache.set(ctx.projectId, hit)
      hit.policy.catch(() => cache.delete(ctx.projectId))
      // bounded: entries older than the window are useless anyway
      if (cache.size > 10_000) for (const [id, e] of cache) if (now() - e.at >= POLICY_CACHE_MS) cache.delete(id)
    }
    const { policy, changedAt } = await hit.policy
    if (policy.disabledEndpoints.length === 0 && Object.keys(policy.modelOverrides).length === 0) return
    const from = changedAt + POLICY_GRACE_MS
    for (const record of records) if (Date.parse(record.timestamp) >= from) record.policyViolation = violationOf(policy, record)
  }
  return { annotate, invalidate: (projectId: string) => void cache.delete(projectId) }
}
