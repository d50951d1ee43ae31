import { cutText, detectShapes, SENSITIVE_KIND_LABELS, type Incident, type IncidentRca, type IncidentSeverity, type RelatedRequest, type SensitiveKind } from '@llmguard/shared'
import type { Aggregate, Evidence } from './evidence.js'

const ms = (v: number) => `${Math.round(v).toLocaleString('en-US')} ms`
const pct = (v: number) => `${(v * 100).toFixed(1)} %`
const usd = (v: number | null) => (v === null ? 'unpriced' : `$${v < 0.01 ? v.toPrecision(3) : v.toFixed(4)}`)

/**
 * The window's figure against the 24 hours before it, worded for any baseline: a ratio when
 * there is one, the plain figure when it is zero, and no comparison without (priced) requests.
 */
function versus(now: number | null, before: number | null, baselineRequests: number, format: (v: number) => string): string {
  if (baselineRequests === 0) return 'with no requests in the previous 24 hours to compare with'
  if (before === null) return 'with no priced requests in the previous 24 hours to compare with'
  if (now !== null && before > 0) return `${(now / before).toFixed(1)}× the previous 24 hours' ${format(before)}`
  return `against ${format(before)} over the previous 24 hours`
}
const num = (v: unknown, fallback = 0) => (typeof v === 'number' && Number.isFinite(v) ? v : fallback)

/** "rose to" only when it did: one slow request fires the latency rule while the average may not have moved. */
const movedTo = (now: number, before: number, baselineRequests: number) => (baselineRequests === 0 || now > before ? 'rose to' : 'was')

function topCounts(values: string[], n = 3): string {
  const counts = new Map<string, number>()
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1)
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([v, c]) => `${v} ×${c}`)
    .join(', ')
}

const busiestModel = (a: Aggregate) => Object.keys(a.models)[0]

function errorFix(related: RelatedRequest[]): string {
  const statuses = related.map((r) => r.error?.status).filter((s): s is number => typeof s === 'number')
  const types = related.map((r) => `${r.error?.type ?? ''} ${r.error?.message ?? ''}`.toLowerCase())
  if (statuses.includes(429) || types.some((t) => t.includes('rate'))) {
    return 'The provider is rate-limiting (429): add exponential backoff with jitter honouring Retry-After, spread bursts, and raise the account tier or switch part of the traffic to another model (remediation switch_model).'
  }
  if (statuses.some((s) => s >= 500) || types.some((t) => t.includes('timeout') || t.includes('connection'))) {
    return 'The provider is failing or timing out (5xx / timeouts): retry idempotent calls with backoff, set client timeouts, and fail over to a fallback model (remediation switch_model) until the provider recovers.'
  }
  if (statuses.some((s) => s === 400 || s === 422)) {
    return 'Requests are being refused as invalid (400): check recent deploys for changed parameters (model names, max_tokens over the context window, malformed tool schemas) and roll the change back.'
  }
  if (statuses.some((s) => s === 401 || s === 403)) return 'Requests are refused for authentication (401/403): rotate or restore the provider API key used by this application.'
  return 'Inspect the failing requests listed with this incident, roll back the most recent change to prompts or parameters, and route traffic to a fallback model (remediation switch_model) meanwhile.'
}

/**
 * A deterministic analysis computed from the data, used without an OpenAI key and whenever
 * the model's answer is missing, invalid or late. It names the numbers: what rose, by how much,
 * on which model, since when, and gives a concrete fix.
 */
export function heuristicRca(incident: Incident, ev: Evidence, now: Date, metadata: Record<string, unknown> = {}): IncidentRca {
  const m = incident.metadata
  const w = ev.window
  const b = ev.baseline
  const since = incident.firstSeenAt
  const model = incident.key === '*' ? (busiestModel(w) ?? 'all models') : incident.key
  const rel = ev.related
  let rootCause: string
  let recommendedFix: string
  let severity: IncidentSeverity = incident.severity
  let affected = incident.occurrences

  switch (incident.type) {
    case 'latency':
    case 'anomaly_latency': {
      const slow = rel.map((r) => r.latency)
      const max = slow.length ? Math.max(...slow) : num(m.maxLatencyMs)
      const tokens = rel.length ? rel.reduce((a, r) => a + r.tokens, 0) / rel.length : 0
      rootCause =
        `Average latency on ${model} ${movedTo(w.avgLatency, b.avgLatency, b.requests)} ${ms(w.avgLatency)} (max ${ms(max)}) since ${since}, ` +
        versus(w.avgLatency, b.avgLatency, b.requests, ms) +
        (incident.type === 'latency' ? `; ${incident.occurrences} request(s) exceeded the ${ms(num(m.thresholdMs, 5000))} threshold` : '') +
        (tokens ? `; the slow requests averaged ${Math.round(tokens)} tokens against ${Math.round(b.avgTokens)} normally.` : '.')
      recommendedFix =
        tokens > b.avgTokens * 1.5 && b.avgTokens > 0
          ? `Responses got longer (${Math.round(tokens)} vs ${Math.round(b.avgTokens)} tokens): cap max_tokens, trim the prompt, and stream responses so users see the first token sooner.`
          : `The provider is slow on ${model}: stream responses, set a client timeout near ${ms(Math.max(num(m.thresholdMs, 5000), b.avgLatency * 3))}, and switch latency-sensitive calls to a faster model (remediation switch_model) until it recovers.`
      if (incident.type === 'anomaly_latency') affected = w.requests
      break
    }
    case 'error_rate':
    case 'anomaly_error_rate': {
      const kinds = topCounts(rel.map((r) => (r.error ? `${r.error.type}${r.error.status ? ` (${r.error.status})` : ''}` : 'error')))
      rootCause =
        `Error rate on ${model} ${movedTo(w.errorRate, b.errorRate, b.requests)} ${pct(w.errorRate)} (${w.errors} of ${w.requests} requests) since ${since}, ` +
        versus(w.errorRate, b.errorRate, b.requests, pct) +
        (kinds ? `; most frequent errors among the last ${rel.length}: ${kinds}.` : '.')
      recommendedFix = errorFix(rel)
      severity = w.errorRate >= 0.5 ? 'critical' : severity
      affected = w.errors
      break
    }
    case 'high_risk': {
      const reasons = topCounts(rel.flatMap((r) => r.riskReasons.map((x) => x.code)))
      const users = [...new Set(rel.map((r) => r.userId).filter(Boolean))]
      const max = rel.length ? Math.max(...rel.map((r) => r.riskScore)) : num(m.maxRiskScore)
      rootCause =
        `${rel.length} recent request(s) on ${model} scored above ${num(m.thresholdScore, 80)} (max ${max}) since ${since}` +
        (reasons ? `; risk reasons: ${reasons}` : '') +
        (users.length ? `; from ${users.length === 1 ? `one end user (${users[0]})` : `${users.length} end users`}.` : '.')
      recommendedFix =
        reasons.includes('prompt_injection')
          ? `Prompt-injection attempts: turn on blockOnRisk with safetyThreshold ${num(m.thresholdScore, 80)} (remediation increase_safety_threshold)${users.length === 1 ? ` and rate-limit user ${users[0]} (remediation rate_limit_user)` : ''}, and keep untrusted text out of the system prompt.`
          : `Sensitive data is reaching the model: redact emails, card numbers and keys before the call, and turn on blockOnRisk with safetyThreshold ${num(m.thresholdScore, 80)} (remediation increase_safety_threshold).`
      affected = Math.max(rel.length, incident.occurrences)
      break
    }
    case 'cost_spike':
    case 'anomaly_cost': {
      const cur = w.avgCostPerRequest
      const base = b.avgCostPerRequest
      const tokens = w.avgTokens
      rootCause =
        `Average cost per request on ${model} rose to ${usd(cur)} since ${since}, ` +
        `${versus(cur, base, b.requests, usd)}; ` +
        `average tokens ${Math.round(tokens)} vs ${Math.round(b.avgTokens)}; ${w.requests} requests in the window.`
      recommendedFix =
        tokens > b.avgTokens * 1.3 && b.avgTokens > 0
          ? `Requests got bigger (${Math.round(tokens)} vs ${Math.round(b.avgTokens)} tokens): cap max_tokens, trim conversation history, and enable prompt caching for the shared prefix.`
          : `Route routine traffic on ${model} to a cheaper model (remediation switch_model), cap max_tokens, and check for a retry loop or a new caller multiplying calls.`
      affected = w.requests
      break
    }
    case 'anomaly_volume': {
      rootCause =
        `Request volume rose to ${w.requests} in the hour from ${w.from} (mean ${num(m.baselineMean).toFixed(1)} ± ${num(m.baselineStddev).toFixed(1)} per hour over the previous 24 hours, ${num(m.sigmas).toFixed(1)}σ); busiest model ${model}` +
        (rel.length ? `; top end users: ${topCounts(rel.map((r) => r.userId ?? 'anonymous'))}.` : '.')
      recommendedFix =
        'Look for a retry loop, a batch job or a single user driving the traffic; rate-limit the heaviest user (remediation rate_limit_user) or lower the project rateLimit until the cause is fixed.'
      affected = w.requests
      break
    }
    default: {
      // datadog: the alert is about something else; the project's LLM traffic is the context
      const alert = `Datadog monitor ${incident.key} (${String(m.priority ?? 'no priority')}) reported "${String(m.transition ?? 'Triggered')}" since ${since}. `
      const follow = `follow the monitor${m.link ? ` (${String(m.link)})` : ''} and check the services it watches.`
      if (w.requests === 0 && b.requests > 0) {
        rootCause = alert + `The project has had no LLM requests since ${w.from}, against ${b.requests} in the previous 24 hours.`
        recommendedFix = `LLM traffic stopped with the alert: check that the application is running and that its SDK can reach this collector (\`llmguard outbox status\` on the app's host shows queued records), then ${follow}`
      } else if (w.requests === 0) {
        rootCause = alert + 'The project has no LLM requests in the window or the 24 hours before, so there is no LLM traffic to relate the alert to.'
        recommendedFix = `Nothing on the LLM side to go on: ${follow}`
      } else {
        const traffic = `${w.requests} requests, error rate ${pct(w.errorRate)}`
        rootCause =
          alert +
          (b.requests > 0
            ? `Meanwhile the project's LLM traffic: ${traffic} (24 h before: ${pct(b.errorRate)}), average latency ${ms(w.avgLatency)} (before: ${ms(b.avgLatency)}).`
            : `Meanwhile the project's LLM traffic: ${traffic}, average latency ${ms(w.avgLatency)}, with no requests in the previous 24 hours to compare with.`)
        recommendedFix =
          w.errorRate > Math.max(b.errorRate * 2, 0.05)
            ? `LLM errors rose with the alert: ${errorFix(rel)}`
            : w.avgLatency > b.avgLatency * 2 && b.avgLatency > 0
              ? `LLM latency rose with the alert: stream responses, set client timeouts and move latency-sensitive calls to a faster model (remediation switch_model).`
              : `LLM traffic looks normal: the cause is likely outside the model calls; ${follow}`
      }
      affected = w.requests
    }
  }
  return {
    severity,
    rootCause,
    recommendedFix,
    affectedRequests: Math.max(0, Math.round(affected)),
    metadata: {
      ...metadata,
      window: { from: w.from, to: w.to, requests: w.requests, errorRate: w.errorRate, avgLatency: w.avgLatency, avgCostPerRequest: w.avgCostPerRequest },
      baseline: { from: b.from, to: b.to, requests: b.requests, errorRate: b.errorRate, avgLatency: b.avgLatency, avgCostPerRequest: b.avgCostPerRequest },
      relatedRequests: rel.length,
    },
    source: 'heuristic',
    generatedAt: now.toISOString(),
  }
}

/** How much of an error message the RCA model sees: enough to tell one failure from another. */
export const RCA_ERROR_MESSAGE_CHARS = 200
/** Past this the related requests are cut from the oldest end: a bounded, affordable prompt. */
export const RCA_PROMPT_MAX_CHARS = 16_000

/**
 * An error message as the RCA model may see it: its start, and nothing at all when that holds
 * what the risk detectors call sensitive (a provider quoting the prompt, an address, a key).
 */
export function errorForRca(error: RelatedRequest['error']): RelatedRequest['error'] {
  if (!error) return error
  // judged whole (at most 10,000 characters): a card number or an address across the cut
  // would otherwise go out in part
  const kinds = new Set<SensitiveKind>()
  detectShapes(error.message, kinds)
  if (kinds.size) return { ...error, message: `[withheld: holds ${[...kinds].map((k) => SENSITIVE_KIND_LABELS[k]).join(', ')}]` }
  return { ...error, message: cutShort(error.message, RCA_ERROR_MESSAGE_CHARS) }
}

/** `text`, or its first `chars` characters and an ellipsis. */
const cutShort = (text: string, chars: number) => (text.length > chars ? `${cutText(text, chars)}…` : text)

/** An incident's metadata for the prompt: long texts (a Datadog alert's body, tags, link) cut short. */
function compactMetadata(metadata: Record<string, unknown>): Record<string, unknown> {
  const cut = (v: unknown): unknown => {
    if (typeof v === 'string') return cutShort(v, RCA_METADATA_TEXT_CHARS)
    if (Array.isArray(v)) return v.slice(0, 20).map(cut)
    return v
  }
  return Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, cut(v)]))
}
const RCA_METADATA_TEXT_CHARS = 500

/** The busiest 20 models (a model name is free text: an hour may hold thousands). */
function topModels(models: Record<string, number>, count = 20, nameChars = 200): Record<string, number> {
  const entries = Object.entries(models)
  if (entries.length <= count && entries.every(([m]) => m.length <= nameChars)) return models
  return Object.fromEntries(entries.sort((a, b) => b[1] - a[1]).slice(0, count).map(([m, n]) => [cutText(m, nameChars), n]))
}

/** The prompt for the RCA model: the incident, the numbers and the related requests' metrics. */
export function rcaPrompt(incident: Incident, ev: Evidence): { system: string; user: string } {
  const system = [
    'You are an SRE analysing an incident in an application that calls large language models.',
    'Answer with one JSON object and nothing else, with exactly these fields:',
    '{"severity": "low"|"medium"|"high"|"critical", "rootCause": string, "recommendedFix": string, "affectedRequests": integer, "metadata": object}.',
    'rootCause must name the numbers (what changed, by how much, on which model, since when); recommendedFix must be concrete.',
  ].join('\n')
  const related = ev.related.map((r) => ({
    timestamp: r.timestamp,
    model: r.model,
    latency: r.latency,
    status: r.status,
    error: errorForRca(r.error),
    riskScore: r.riskScore,
    riskReasons: r.riskReasons.map((x) => x.code),
    tokens: r.tokens,
    cost: r.cost,
    // no prompt text: the requests of an incident (high-risk ones above all) may carry
    // personal data or secrets, and the numbers are what the analysis needs
  }))
  let metadata = compactMetadata(incident.metadata)
  let evidence = ev
  let user = userMessage(incident, metadata, evidence, related)
  // model names of escaping-heavy text (up to 200 characters each, 6 a character in JSON) go
  // first: the 10 busiest, names cut to 50 characters
  if (user.length > RCA_PROMPT_MAX_CHARS) {
    evidence = { ...ev, window: { ...ev.window, models: topModels(ev.window.models, 10, 50) }, baseline: { ...ev.baseline, models: topModels(ev.baseline.models, 10, 50) } }
    user = userMessage(incident, metadata, evidence, related)
  }
  // the newest requests first (relatedRequests' order): drop the oldest until it fits, then
  // (metadata of an exotic size) the metadata
  while (user.length > RCA_PROMPT_MAX_CHARS && related.length > 0) {
    related.pop()
    user = userMessage(incident, metadata, evidence, related)
  }
  if (user.length > RCA_PROMPT_MAX_CHARS) {
    metadata = {}
    user = userMessage(incident, metadata, evidence, related)
  }
  if (user.length > RCA_PROMPT_MAX_CHARS) {
    // the totals stay, the per-model split goes, and the title and key are cut shorter
    user = userMessage(incident, metadata, { ...ev, window: { ...ev.window, models: {} }, baseline: { ...ev.baseline, models: {} } }, related, 100)
  }
  return { system, user }
}

function userMessage(incident: Incident, metadata: Record<string, unknown>, ev: Evidence, related: unknown[], textChars = RCA_METADATA_TEXT_CHARS): string {
  const cut = (v: string) => cutShort(v, textChars)
  return JSON.stringify({
    incident: {
      type: incident.type,
      key: cut(incident.key),
      title: cut(incident.title),
      severity: incident.severity,
      occurrences: incident.occurrences,
      firstSeenAt: incident.firstSeenAt,
      lastSeenAt: incident.lastSeenAt,
      metadata,
    },
    window: { ...ev.window, models: topModels(ev.window.models) },
    previous24Hours: { ...ev.baseline, models: topModels(ev.baseline.models) },
    relatedRequests: related,
  })
}
