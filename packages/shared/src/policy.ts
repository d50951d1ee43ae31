import { z } from 'zod'

/**
 * What the SDK enforces before each call (`GET /v1/llm/policy`, API key). Built from the
 * project's settings, overlaid by active remediations. `version` changes exactly when the
 * effective policy does; the response's ETag is `"<version>"`.
 */
export const policySchema = z
  .object({
    version: z.number().int().min(0),
    /** From model (or "*" for every model) → the model to call instead. */
    modelOverrides: z.record(z.string(), z.string()),
    /** When set, replaces the system prompt of each call. */
    systemPrompt: z.string().nullable(),
    /** Endpoints the SDK refuses to call, e.g. "chat.completions". */
    disabledEndpoints: z.array(z.string()),
    /** The app's end-user id → calls allowed per minute (enforced by the SDK). */
    userRateLimits: z.record(z.string(), z.number().int().min(1)),
    safetyThreshold: z.number().int().min(0).max(100),
    /** Block a prompt whose risk score is ≥ safetyThreshold. */
    blockOnRisk: z.boolean(),
    /** HTTP requests per minute per API key, enforced by the collector (informational here). */
    rateLimit: z.number().int().min(1),
  })
  .meta({ id: 'Policy' })
export type Policy = z.infer<typeof policySchema>

/** The policy of a project with default settings and no remediation. */
export const DEFAULT_POLICY: Policy = {
  version: 0,
  modelOverrides: {},
  systemPrompt: null,
  disabledEndpoints: [],
  userRateLimits: {},
  safetyThreshold: 80,
  blockOnRisk: false,
  rateLimit: 600,
}

/**
 * The model a policy's overrides send `model` to: its own entry, else the "*" entry. Own
 * entries only: a model called "constructor" or "toString" is not switched to a function.
 */
export function modelOverrideOf(overrides: Readonly<Record<string, string>>, model: string): string | undefined {
  if (Object.hasOwn(overrides, model)) return overrides[model]
  return Object.hasOwn(overrides, '*') ? overrides['*'] : undefined
}
