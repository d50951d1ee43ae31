import { z } from 'zod'
import { compareIso, DEFAULT_PAGE_LIMIT, isoDateSchema, MAX_PAGE_LIMIT, pageOf, queryIntOr } from './common.js'
import { recordErrorSchema, riskReasonSchema } from './ingest.js'

/** Rule types (evaluated at ingest), anomaly types (hourly job) and Datadog alerts. */
export const INCIDENT_TYPES = [
  'latency',
  'error_rate',
  'high_risk',
  'cost_spike',
  'anomaly_latency',
  'anomaly_error_rate',
  'anomaly_volume',
  'anomaly_cost',
  'datadog',
] as const
export const incidentTypeSchema = z.enum(INCIDENT_TYPES)
export type IncidentType = z.infer<typeof incidentTypeSchema>

/** Lifecycle, forward only: open → acknowledged → resolved (open → resolved allowed). */
export const INCIDENT_STATUSES = ['open', 'acknowledged', 'resolved'] as const
export const incidentStatusSchema = z.enum(INCIDENT_STATUSES)
export type IncidentStatus = z.infer<typeof incidentStatusSchema>

/** True when `to` is the same status or later in the lifecycle. */
export const isForwardTransition = (from: IncidentStatus, to: IncidentStatus) =>
  INCIDENT_STATUSES.indexOf(to) >= INCIDENT_STATUSES.indexOf(from)

export const incidentSeveritySchema = z.enum(['low', 'medium', 'high', 'critical'])
export type IncidentSeverity = z.infer<typeof incidentSeveritySchema>

/** `key` of incidents that concern the whole project rather than one model (anomalies). */
export const ALL_MODELS_KEY = '*'

/**
 * What the RCA model must answer (seed `IncidentRCA`). Anything else is refused and the
 * heuristic analysis is stored instead.
 */
export const rcaAnswerSchema = z.object({
  severity: incidentSeveritySchema,
  rootCause: z.string().trim().min(1).max(4_000),
  recommendedFix: z.string().trim().min(1).max(4_000),
  affectedRequests: z.number().int().min(0),
  metadata: z.record(z.string(), z.unknown()).default({}),
})
export type RcaAnswer = z.infer<typeof rcaAnswerSchema>

/** Seed `IncidentRCA` plus where it came from and when. */
export const incidentRcaSchema = rcaAnswerSchema
  .extend({
    source: z.enum(['openai', 'heuristic']),
    generatedAt: z.string(),
  })
  .meta({ id: 'IncidentRCA' })
export type IncidentRca = z.infer<typeof incidentRcaSchema>

export const incidentSchema = z
  .object({
    id: z.uuid(),
    projectId: z.uuid(),
    type: incidentTypeSchema,
    key: z.string().describe('The model for rules, "*" for project-wide anomalies, the monitor id for Datadog'),
    status: incidentStatusSchema,
    severity: incidentSeveritySchema,
    title: z.string(),
    occurrences: z.number().int(),
    firstSeenAt: z.string(),
    lastSeenAt: z.string(),
    acknowledgedAt: z.string().nullable(),
    resolvedAt: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()),
    rca: incidentRcaSchema.nullable().describe('null while the analysis is pending'),
    rcaPending: z.boolean().describe('true while an analysis is queued or running'),
  })
  .meta({ id: 'Incident' })
export type Incident = z.infer<typeof incidentSchema>

/** A related request as an incident shows it (prompt cut to a preview). */
export const relatedRequestSchema = z
  .object({
    id: z.uuid(),
    timestamp: z.string(),
    model: z.string(),
    latency: z.number().int(),
    status: z.enum(['success', 'error']),
    riskScore: z.number().int(),
    tokens: z.number().int(),
    cost: z.number().nullable(),
    userId: z.string().nullable(),
    error: recordErrorSchema.nullable(),
    riskReasons: z.array(riskReasonSchema),
    promptPreview: z.string().describe('The first 200 characters of the prompt'),
  })
  .meta({ id: 'RelatedRequest' })
export type RelatedRequest = z.infer<typeof relatedRequestSchema>

export const incidentDetailSchema = incidentSchema
  .extend({ relatedRequests: z.array(relatedRequestSchema).describe('The last 20 requests related to the incident, newest first') })
  .meta({ id: 'IncidentDetail' })
export type IncidentDetail = z.infer<typeof incidentDetailSchema>

/** `GET /v1/projects/:id/incidents` */
export const incidentQuerySchema = z
  .object({
    status: z
      .string()
      .transform((v) => v.split(',').map((s) => s.trim()))
      .pipe(z.array(incidentStatusSchema).min(1))
      .optional()
      .describe('One status or a comma-separated list, e.g. open,acknowledged'),
    type: z
      .string()
      .transform((v) => v.split(',').map((s) => s.trim()))
      .pipe(z.array(incidentTypeSchema).min(1))
      .optional()
      .describe('One type or a comma-separated list'),
    startDate: isoDateSchema.optional().describe('Incidents still active at or after this time (lastSeenAt ≥ startDate)'),
    endDate: isoDateSchema.optional().describe('Incidents that began before this time (firstSeenAt < endDate)'),
    page: queryIntOr(1, 1_000_000, 1),
    limit: queryIntOr(1, MAX_PAGE_LIMIT, DEFAULT_PAGE_LIMIT),
  })
  .refine((q) => !q.startDate || !q.endDate || compareIso(q.startDate, q.endDate) < 0, {
    message: 'startDate must be before endDate',
    path: ['startDate'],
  })
export type IncidentQuery = z.output<typeof incidentQuerySchema>
export type IncidentQueryInput = z.input<typeof incidentQuerySchema>

export const incidentPageSchema = pageOf(incidentSchema)

/** `PATCH /v1/incidents/:id` */
export const incidentPatchSchema = z.strictObject({ status: incidentStatusSchema })
export type IncidentPatch = z.infer<typeof incidentPatchSchema>

/** `POST /v1/projects/:id/incidents/detect` */
export const detectResultSchema = z
  .object({
    hour: z.string().describe('The complete UTC hour that was analysed'),
    incidents: z.array(incidentSchema).describe('Incidents opened or updated by this run'),
  })
  .meta({ id: 'DetectResult' })
export type DetectResult = z.infer<typeof detectResultSchema>

/**
 * The body Datadog sends (the template in docs/datadog.md). Datadog substitutes every value as
 * a string; `date` is epoch milliseconds, `tags` a comma-separated list.
 */
/** Datadog's ids arrive as strings or numbers (a template may leave `$ID` unquoted); nothing else is one. */
const datadogId = z.union([z.string(), z.number()]).transform(String).pipe(z.string().trim().min(1).max(200))

export const datadogPayloadSchema = z.object({
  id: datadogId,
  monitorId: datadogId,
  title: z.string().max(1_000).default(''),
  transition: z.string().trim().min(1).max(100),
  /** `$PRIORITY`: the event's priority (`normal`, `low`). */
  priority: z.string().max(20).nullish(),
  /** `$ALERT_PRIORITY`: the monitor's priority, P1–P5; decides the severity when given. */
  alertPriority: z.string().max(20).nullish(),
  // epoch ms; 8.64e15 is the last instant a JavaScript Date holds
  date: z.coerce.number().int().positive().max(8_640_000_000_000_000).optional(),
  tags: z.string().max(10_000).default(''),
  link: z.string().max(2_000).nullish(),
  body: z.string().max(32_768).nullish(),
})
export type DatadogPayload = z.infer<typeof datadogPayloadSchema>

export const datadogResultSchema = z
  .object({
    duplicate: z.boolean(),
    incident: incidentSchema.nullable().optional().describe('The incident opened, updated or resolved (null: "Recovered" with nothing open)'),
  })
  .meta({ id: 'DatadogWebhookResult' })
export type DatadogResult = z.infer<typeof datadogResultSchema>

/** The tag that names the LLMGuard project of a Datadog monitor. */
export const DATADOG_PROJECT_TAG = 'llmguard_project'
