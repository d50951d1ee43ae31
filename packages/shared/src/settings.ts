import { z } from 'zod'
import { MAX_METADATA_DEPTH, nestedWithin } from './common.js'
import { DEFAULT_POLICY } from './policy.js'
import { priceOverridesSchema } from './prices.js'
import { MAX_PROJECT_KEYWORDS } from './risk/keywords.js'
import { autoRemediationSchema } from './remediation.js'

/**
 * Project settings (seed `ProjectSettings` plus blockOnRisk). Stored as one JSON document, so a
 * feature adds its fields here (with a default) and needs no migration: incident thresholds,
 * sensitive keywords, price overrides and automatic remediation rules belong beside these.
 * Every field has a default; stored documents are parsed through this schema on read.
 */
export const projectSettingsFields = {
  /** The model the project prefers (informational: the SDK does not switch models for it). */
  preferredModel: z.string().trim().min(1).max(200).nullable().default(null),
  /** Risk score (0–100) at or above which a prompt is blocked when blockOnRisk is on. */
  safetyThreshold: z.number().int().min(0).max(100).default(DEFAULT_POLICY.safetyThreshold),
  /** HTTP requests per minute per API key of this project (enforced by the collector). */
  rateLimit: z.number().int().min(1).max(1_000_000).default(DEFAULT_POLICY.rateLimit),
  /** When set, the SDK puts it in place of each call's system prompt. */
  systemPrompt: z.string().max(32_768).nullable().default(null),
  blockOnRisk: z.boolean().default(DEFAULT_POLICY.blockOnRisk),
  /** Free-form; at most 16 KB as JSON. */
  metadata: z
    .record(z.string(), z.unknown())
    .refine((m) => nestedWithin(m, MAX_METADATA_DEPTH), { message: `must nest at most ${MAX_METADATA_DEPTH} levels deep`, abort: true })
    .refine((m) => JSON.stringify(m).length <= 16_384, 'must be at most 16 KB as JSON')
    .default({}),
  /** Words that count as sensitive content in risk scoring, besides the built-in list. */
  sensitiveKeywords: z.array(z.string().trim().min(2).max(100)).max(MAX_PROJECT_KEYWORDS).default([]),
  /** Model → prices (USD per 1M tokens; `flatPer1K` for token totals without the split), over the built-in table. */
  priceOverrides: priceOverridesSchema.default({}),
  // Incident rule thresholds (seed defaults). Flat fields, so a PATCH of one leaves the others.
  /** Latency rule: a request slower than this (ms) opens or updates a `latency` incident. */
  incidentLatencyMs: z.number().int().min(1).max(3_600_000).default(5_000),
  /** Error-rate rule: more than this percentage of a model's requests failed in the last hour. */
  incidentErrorRatePercent: z.number().min(0).max(100).default(10),
  /** High-risk rule: a risk score above this… */
  incidentRiskScore: z.number().int().min(0).max(100).default(80),
  /** …on this many consecutive requests of one model. */
  incidentRiskConsecutive: z.number().int().min(1).max(1_000).default(3),
  /** Cost rule: the hour's average cost per request this many percent above the trailing day's. */
  incidentCostSpikePercent: z.number().min(0).max(10_000).default(50),
  /** Minimum-volume guard of the error-rate and cost rules and of the hourly anomaly job. */
  incidentMinRequests: z.number().int().min(1).max(1_000_000).default(10),
  /**
   * Automatic remediation: incident type → {action, parameters, durationMinutes}. When an
   * incident of that type opens the action is applied, and reverted when the duration ends.
   */
  autoRemediation: autoRemediationSchema.default({}),
}

export const projectSettingsSchema = z.object(projectSettingsFields).meta({ id: 'ProjectSettings' })
export type ProjectSettings = z.infer<typeof projectSettingsSchema>

/** The settings document as returned: the fields plus whose they are. */
export const projectSettingsResponseSchema = projectSettingsSchema
  .extend({ projectId: z.uuid(), updatedAt: z.string() })
  .meta({ id: 'ProjectSettingsResponse' })
export type ProjectSettingsResponse = z.infer<typeof projectSettingsResponseSchema>

/** PATCH: any subset of the fields, nothing else (unknown fields are a 400, not ignored). */
export const projectSettingsPatchSchema = z
  .strictObject(
    Object.fromEntries(
      Object.entries(projectSettingsFields).map(([name, field]) => [name, (field as z.ZodDefault<z.ZodType>).unwrap().optional()]),
    ) as { [K in keyof typeof projectSettingsFields]: z.ZodOptional<ReturnType<(typeof projectSettingsFields)[K]['unwrap']>> },
  )
  // only when the rest is valid: after an unknown key it would only add a second, misleading issue
  .refine((v) => Object.keys(v).length > 0, { message: 'give at least one setting to change', when: (payload) => payload.issues.length === 0 })
export type ProjectSettingsPatch = z.input<typeof projectSettingsPatchSchema>

/** Seed `UserSettings`: role and createdAt are read-only. */
export const userSettingsSchema = z
  .object({
    id: z.uuid(),
    userId: z.uuid(),
    name: z.string().nullable(),
    email: z.string(),
    role: z.enum(['user', 'admin']),
    createdAt: z.string(),
  })
  .meta({ id: 'UserSettings' })
export type UserSettings = z.infer<typeof userSettingsSchema>

export const userSettingsPatchSchema = z
  .strictObject({
    name: z.string().trim().min(1).max(100).nullable().optional(),
    email: z
      .string()
      .trim()
      .max(254)
      .pipe(z.email())
      .transform((v) => v.toLowerCase())
      .optional(),
    /** The account's password: needed to change the email (the email is what signs in). */
    currentPassword: z.string().min(1).max(256).optional(),
  })
  // only when the rest is valid: after an unknown key it would only add a second, misleading issue
  .refine((v) => Object.keys(v).some((k) => k !== 'currentPassword'), { message: 'give at least one setting to change', when: (payload) => payload.issues.length === 0 })
  .refine((v) => v.email === undefined || v.currentPassword !== undefined, {
    message: 'changing the email needs currentPassword (the account\'s password)',
    path: ['currentPassword'],
    when: (payload) => payload.issues.length === 0,
  })
export type UserSettingsPatch = z.input<typeof userSettingsPatchSchema>
