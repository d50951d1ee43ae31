import type { Incident, IncidentDetail, IncidentStatus } from '@llmguard/shared'
import { c, keyValues, relativeTime, safe, table, usd } from './output.js'

const plain = (s: string) => s
const severity = (s: Incident['severity']) => (s === 'critical' || s === 'high' ? c.red : s === 'medium' ? c.yellow : plain)
const status = (s: IncidentStatus) => (s === 'open' ? c.red : s === 'acknowledged' ? c.yellow : c.green)

/** Why an analysis is the collector's own (docs/api.md, root-cause analysis). */
const FALLBACK_REASONS: Record<string, string> = {
  no_api_key: 'no OPENAI_API_KEY on the collector',
  invalid_response: "OpenAI's answer was not a valid analysis",
  error: 'the OpenAI call failed',
  timeout: 'OpenAI did not answer in time',
  budget: "the owner's daily OpenAI analyses (RCA_DAILY_LIMIT) are spent",
}

export function incidentTable(items: readonly Incident[]): string {
  return table(items, [
    { header: 'ID', get: (i) => i.id },
    { header: 'STATUS', get: (i) => i.status, paint: (s, i) => status(i.status)(s) },
    { header: 'SEVERITY', get: (i) => i.severity, paint: (s, i) => severity(i.severity)(s) },
    { header: 'TYPE', get: (i) => i.type },
    { header: 'KEY', get: (i) => i.key, max: 20 },
    { header: 'SEEN', get: (i) => i.occurrences, align: 'right' },
    { header: 'LAST', get: (i) => relativeTime(i.lastSeenAt) },
    { header: 'TITLE', get: (i) => i.title, max: 60 },
  ])
}

export function incidentDetail(i: Incident | IncidentDetail): string {
  const lines = [
    keyValues([
      ['id', i.id],
      ['title', i.title, c.bold],
      ['status', i.status, status(i.status)],
      ['severity', i.severity, severity(i.severity)],
      ['type', `${i.type} (${i.key})`],
      ['occurrences', i.occurrences],
      ['first seen', `${i.firstSeenAt} (${relativeTime(i.firstSeenAt)})`],
      ['last seen', `${i.lastSeenAt} (${relativeTime(i.lastSeenAt)})`],
      ['acknowledged', i.acknowledgedAt],
      ['resolved', i.resolvedAt],
    ]),
  ]
  if (i.rca) {
    const reason = i.rca.metadata.fallbackReason
    const why = i.rca.source === 'heuristic' && typeof reason === 'string' ? `: ${FALLBACK_REASONS[reason] ?? safe(reason)}` : ''
    lines.push(
      '',
      c.bold(`Root cause (${safe(i.rca.source)}${why}, ${relativeTime(i.rca.generatedAt)})`),
      safe(i.rca.rootCause, { lines: true }),
      '',
      c.bold('Recommended fix'),
      safe(i.rca.recommendedFix, { lines: true }),
      c.dim(`affected requests: ${i.rca.affectedRequests}`),
    )
  } else lines.push('', c.dim(i.rcaPending ? 'root-cause analysis pending…' : 'no root-cause analysis yet'))
  if ('relatedRequests' in i && i.relatedRequests.length) {
    lines.push(
      '',
      c.bold('Related requests'),
      table(i.relatedRequests, [
        { header: 'ID', get: (r) => r.id },
        { header: 'WHEN', get: (r) => relativeTime(r.timestamp) },
        { header: 'MODEL', get: (r) => r.model, max: 24 },
        { header: 'STATUS', get: (r) => r.status },
        { header: 'RISK', get: (r) => r.riskScore, align: 'right' },
        { header: 'LATENCY', get: (r) => `${r.latency} ms`, align: 'right' },
        { header: 'COST', get: (r) => usd(r.cost), align: 'right' },
        { header: 'PROMPT', get: (r) => r.promptPreview, max: 40 },
      ]),
    )
  }
  return lines.join('\n')
}
