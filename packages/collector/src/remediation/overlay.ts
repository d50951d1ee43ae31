import type { PolicyFields, RemediationAction, RemediationParameters } from '@llmguard/shared'
import type { PolicyBody } from '../policy/service.js'

/**
 * Pure policy arithmetic of remediation. The active actions of a project are layers, in apply
 * order, over its settings-built policy. Each layer sets the fields it touched to its `after`
 * values, except reset_settings, which masks every layer below it (the policy goes back to the
 * project's settings as they are now). Rolling an action back removes its layer; it is refused
 * when a later active layer touched one of its fields, because the fields would then not go
 * back to what the action found.
 */

/** One active action as the overlay sees it. */
export interface Layer {
  actionType: RemediationAction
  after: PolicyFields
}

type MapField = 'modelOverrides' | 'disabledEndpoints' | 'userRateLimits'
type ScalarField = 'systemPrompt' | 'safetyThreshold' | 'blockOnRisk'
const MAP_FIELDS: MapField[] = ['modelOverrides', 'disabledEndpoints', 'userRateLimits']
const SCALAR_FIELDS: ScalarField[] = ['systemPrompt', 'safetyThreshold', 'blockOnRisk']

/** Every model: a switch_model without `from`. */
export const ANY_MODEL = '*'

/** The values an action sets (its touched fields), given the policy it is applied over. */
export function targetOf<A extends RemediationAction>(action: A, parameters: RemediationParameters[A], current: PolicyBody, base: PolicyBody): PolicyFields {
  switch (action) {
    case 'switch_model': {
      const p = parameters as RemediationParameters['switch_model']
      return { modelOverrides: { [p.from ?? ANY_MODEL]: p.to } }
    }
    case 'increase_safety_threshold':
      return { safetyThreshold: (parameters as RemediationParameters['increase_safety_threshold']).threshold, blockOnRisk: true }
    case 'disable_endpoint':
      return { disabledEndpoints: { [(parameters as RemediationParameters['disable_endpoint']).endpoint]: true } }
    case 'change_system_prompt':
      return { systemPrompt: (parameters as RemediationParameters['change_system_prompt']).systemPrompt }
    case 'rate_limit_user': {
      const p = parameters as RemediationParameters['rate_limit_user']
      return { userRateLimits: { [p.userId]: p.limitPerMinute } }
    }
    case 'reset_settings':
      // the fields where the policy differs from the settings, set back to the settings' values
      return read(base, differences(current, base))
    default:
      throw new Error(`unknown remediation action ${String(action)}`)
  }
}

/** The current values of the fields named by `shape` (its values are ignored). */
export function read(policy: PolicyBody, shape: PolicyFields): PolicyFields {
  const out: PolicyFields = {}
  for (const f of SCALAR_FIELDS) if (shape[f] !== undefined) (out as Record<string, unknown>)[f] = policy[f]
  for (const f of MAP_FIELDS) {
    const keys = shape[f]
    if (!keys) continue
    const values: Record<string, unknown> = {}
    for (const key of Object.keys(keys)) values[key] = mapValue(policy, f, key)
    ;(out as Record<string, unknown>)[f] = values
  }
  return out
}

function mapValue(policy: PolicyBody, field: MapField, key: string): unknown {
  if (field === 'disabledEndpoints') return policy.disabledEndpoints.includes(key)
  return Object.hasOwn(policy[field], key) ? policy[field][key] : null
}

/** `policy` with the given field values set. */
export function applyFields(policy: PolicyBody, fields: PolicyFields): PolicyBody {
  const out: PolicyBody = { ...policy, modelOverrides: { ...policy.modelOverrides }, userRateLimits: { ...policy.userRateLimits } }
  for (const f of SCALAR_FIELDS) if (fields[f] !== undefined) (out as Record<string, unknown>)[f] = fields[f]
  for (const [key, to] of Object.entries(fields.modelOverrides ?? {})) {
    if (to === null) delete out.modelOverrides[key]
    else out.modelOverrides[key] = to
  }
  for (const [key, limit] of Object.entries(fields.userRateLimits ?? {})) {
    if (limit === null) delete out.userRateLimits[key]
    else out.userRateLimits[key] = limit
  }
  const disabled = new Set(policy.disabledEndpoints)
  for (const [endpoint, off] of Object.entries(fields.disabledEndpoints ?? {})) {
    if (off) disabled.add(endpoint)
    else disabled.delete(endpoint)
  }
  out.disabledEndpoints = [...disabled].sort()
  return out
}

/** The effective policy: the active layers, in apply order, over the settings-built `base`. */
export function fold(base: PolicyBody, layers: readonly Layer[]): PolicyBody {
  let body = applyFields(base, {})
  for (const layer of layers) body = layer.actionType === 'reset_settings' ? applyFields(base, {}) : applyFields(body, layer.after)
  return body
}

/** The fields (map fields per key) where `a` and `b` differ, as a shape for `read`. */
export function differences(a: PolicyBody, b: PolicyBody): PolicyFields {
  const out: Record<string, unknown> = {}
  for (const f of SCALAR_FIELDS) if (a[f] !== b[f]) out[f] = true
  for (const f of MAP_FIELDS) {
    const keys = f === 'disabledEndpoints' ? new Set([...a[f], ...b[f]]) : new Set([...Object.keys(a[f]), ...Object.keys(b[f])])
    const changed: Record<string, unknown> = {}
    for (const key of keys) if (mapValue(a, f, key) !== mapValue(b, f, key)) changed[key] = true
    if (Object.keys(changed).length) out[f] = changed
  }
  return out as PolicyFields
}

/** The touched fields as comparable path strings (map fields per key). */
export function paths(fields: PolicyFields): Set<string> {
  const out = new Set<string>()
  for (const f of SCALAR_FIELDS) if (fields[f] !== undefined) out.add(JSON.stringify([f]))
  for (const f of MAP_FIELDS) for (const key of Object.keys(fields[f] ?? {})) out.add(JSON.stringify([f, key]))
  return out
}

/**
 * True when `later` (applied after `earlier` and still active) changed a field `earlier`
 * touched. A reset_settings changes every field, whatever it recorded as different.
 */
export function conflicts(earlier: Layer, later: Layer): boolean {
  if (later.actionType === 'reset_settings') return true
  const mine = paths(earlier.after)
  for (const p of paths(later.after)) if (mine.has(p)) return true
  return false
}
