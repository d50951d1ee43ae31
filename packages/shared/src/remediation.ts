import { z } from 'zod'
import { pageOf } from './common.js'
import { incidentTypeSchema } from './incidents.js'

/**
 * Remediation (SPEC §3 "Remediation"): actions hung off an incident that change the project's
 * effective policy (what the SDK enforces), each kept with the previous values of exactly the
 * fields it touched, so it can be rolled back.
 */
export const REMEDIATION_ACTIONS = [
  'switch_model',
  'increase_safety_threshold',
  'disable_endpoint',
  'reset_settings',
  'change_system_prompt',
  'rate_limit_user',
] as const
export const remediationActionSchema = z.enum(REMEDIATION_ACTIONS)
export type RemediationAction = z.infer<typeof remediationActionSchema>

/**
 * A name the policy keys a map by (a model, an end user, an endpoint). Never `__proto__`: as an
 * object key it would set the object's prototype instead, so the action would silently do nothing.
 */
const policyKey = (s: z.ZodString) => s.refine((k) => k !== '__proto__', { message: 'cannot be "__proto__"' })
const model = policyKey(z.string().trim().min(1).max(200))

/** Parameters per action, strict: an unknown parameter is a 400 rather than silently ignored. */
export const remediationParameterSchemas = {
  /** No `from` (or "*") = every model. */
  switch_model: z
    .strictObject({
      // "*" means every model on the `from` side only: as a target it would be sent to the provider
      to: model.refine((m) => m !== '*', { message: 'must name a model ("*" means every model, and only in from)' }),
      from: model.optional(),
    })
    .refine((p) => p.from !== p.to, { message: 'from and to name the same model', path: ['to'] }),
  /** Sets the threshold and turns blockOnRisk on. */
  increase_safety_threshold: z.strictObject({ threshold: z.number().int().min(0).max(100) }),
  /** e.g. "chat.completions", "responses", "embeddings", "completions". */
  disable_endpoint: z.strictObject({ endpoint: policyKey(z.string().trim().min(1).max(100)) }),
  /** The policy back to the project's settings. */
  reset_settings: z.strictObject({}),
  change_system_prompt: z.strictObject({ systemPrompt: z.string().min(1).max(32_768) }),
  rate_limit_user: z.strictObject({
    userId: policyKey(z.string().min(1).max(256)),
    limitPerMinute: z.number().int().min(1).max(1_000_000),
  }),
} as const satisfies Record<RemediationAction, z.ZodType>

export type RemediationParameters = { [A in RemediationAction]: z.output<(typeof remediationParameterSchemas)[A]> }

/** `{actionType, parameters}` checked per action type (parameters may be omitted for reset_settings). */
export const remediationRequestSchema = z
  .discriminatedUnion('actionType', [
    z.strictObject({ actionType: z.literal('switch_model'), parameters: remediationParameterSchemas.switch_model }),
    z.strictObject({ actionType: z.literal('increase_safety_threshold'), parameters: remediationParameterSchemas.increase_safety_threshold }),
    z.strictObject({ actionType: z.literal('disable_endpoint'), parameters: remediationParameterSchemas.disable_endpoint }),
    z.strictObject({ actionType: z.literal('reset_settings'), parameters: remediationParameterSchemas.reset_settings.default({}) }),
    z.strictObject({ actionType: z.literal('change_system_prompt'), parameters: remediationParameterSchemas.change_system_prompt }),
    z.strictObject({ actionType: z.literal('rate_limit_user'), parameters: remediationParameterSchemas.rate_limit_user }),
  ])
  .meta({ id: 'RemediationRequest' })
export type RemediationRequest = z.output<typeof remediationRequestSchema>
export type RemediationRequestInput = z.input<typeof remediationRequestSchema>

/**
 * The policy fields an action touched, and their values. Map fields are keyed by what was
 * touched: `modelOverrides` by from-model ("*" = every model; null = no override),
 * `disabledEndpoints` by endpoint (true = disabled), `userRateLimits` by user id (null = none).
 */
export const policyFieldsSchema = z
  .object({
    modelOverrides: z.record(z.string(), z.string().nullable()).optional(),
    systemPrompt: z.string().nullable().optional(),
    disabledEndpoints: z.record(z.string(), z.boolean()).optional(),
    userRateLimits: z.record(z.string(), z.number().int().nullable()).optional(),
    safetyThreshold: z.number().int().optional(),
    blockOnRisk: z.boolean().optional(),
  })
  .meta({ id: 'PolicyFields' })
export type PolicyFields = z.infer<typeof policyFieldsSchema>

export const REMEDIATION_STATES = ['active', 'rolled_back', 'expired'] as const
export const remediationStateSchema = z.enum(REMEDIATION_STATES)
export type RemediationState = z.infer<typeof remediationStateSchema>

/** Who did it: a signed-in user, or the system (automatic remediation and its timed revert). */
export const remediationActorSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('user'), userId: z.uuid() }),
  z.object({ kind: z.literal('system') }),
])
export type RemediationActor = z.infer<typeof remediationActorSchema>

/** One audit entry: values of the touched fields in the effective policy just before and after. */
export const remediationAuditSchema = z
  .object({
    event: z.enum(['applied', 'rolled_back', 'expired']),
    actor: remediationActorSchema,
    at: z.string(),
    before: policyFieldsSchema,
    after: policyFieldsSchema,
  })
  .meta({ id: 'RemediationAuditEntry' })
export type RemediationAudit = z.infer<typeof remediationAuditSchema>

export const remediationSchema = z
  .object({
    id: z.uuid(),
    incidentId: z.uuid(),
    projectId: z.uuid(),
    actionType: remediationActionSchema,
    parameters: z.record(z.string(), z.unknown()),
    state: remediationStateSchema,
    /** Applied by an automatic-remediation rule (then `expiresAt` is when the job reverts it). */
    automatic: z.boolean(),
    /** The touched fields before the action and after it. A rollback removes the action's layer: the fields then show what is under it now (its `before`, unless that changed since). */
    before: policyFieldsSchema,
    after: policyFieldsSchema,
    appliedAt: z.string(),
    appliedBy: remediationActorSchema,
    expiresAt: z.string().nullable(),
    /** When it was rolled back or expired. */
    endedAt: z.string().nullable(),
    audit: z.array(remediationAuditSchema),
  })
  .meta({ id: 'Remediation' })
export type Remediation = z.infer<typeof remediationSchema>

export const remediationPageSchema = pageOf(remediationSchema).meta({ id: 'RemediationPage' })

/** Durations of automatic remediation: one minute to 30 days. */
export const MAX_AUTO_REMEDIATION_MINUTES = 43_200

const duration = z.number().int().min(1).max(MAX_AUTO_REMEDIATION_MINUTES)

/** One automatic-remediation rule: the action applied when an incident of a type opens, and for how long. */
export const autoRemediationRuleSchema = z
  .discriminatedUnion('action', [
    z.strictObject({ action: z.literal('switch_model'), parameters: remediationParameterSchemas.switch_model, durationMinutes: duration }),
    z.strictObject({ action: z.literal('increase_safety_threshold'), parameters: remediationParameterSchemas.increase_safety_threshold, durationMinutes: duration }),
    z.strictObject({ action: z.literal('disable_endpoint'), parameters: remediationParameterSchemas.disable_endpoint, durationMinutes: duration }),
    z.strictObject({ action: z.literal('reset_settings'), parameters: remediationParameterSchemas.reset_settings.default({}), durationMinutes: duration }),
    z.strictObject({ action: z.literal('change_system_prompt'), parameters: remediationParameterSchemas.change_system_prompt, durationMinutes: duration }),
    z.strictObject({ action: z.literal('rate_limit_user'), parameters: remediationParameterSchemas.rate_limit_user, durationMinutes: duration }),
  ])
  .meta({ id: 'AutoRemediationRule' })
export type AutoRemediationRule = z.output<typeof autoRemediationRuleSchema>

/** Incident type → rule (project settings `autoRemediation`); a type without a rule does nothing. */
export const autoRemediationSchema = z.partialRecord(incidentTypeSchema, autoRemediationRuleSchema)
export type AutoRemediation = z.output<typeof autoRemediationSchema>
