import { Flags } from '@oclif/core'
import { logQuerySchema, type LogQueryInput, type LogResult } from '@llmguard/shared'
import { parseTime } from './duration.js'
import { checkQuery } from './errors.js'
import { c, relativeTime, safe, table, usd } from './output.js'

/** Every LogQuery filter as a flag (the sort and paging ones are added by `logs search`). */
export const logFilterFlags = {
  search: Flags.string({ char: 's', description: 'case-insensitive substring of prompt or response' }),
  model: Flags.string({ char: 'm', description: 'exact model name' }),
  'min-risk': Flags.integer({ description: 'minimum risk score (0–100)', min: 0, max: 100 }),
  'max-risk': Flags.integer({ description: 'maximum risk score (0–100)', min: 0, max: 100 }),
  since: Flags.string({ description: 'from this time: a duration back from now (15m, 1h, 7d; units lowercase) or a date/time, UTC unless it has an offset (inclusive); alias --start-date', aliases: ['start-date'] }),
  until: Flags.string({ description: 'before this time: a duration back from now or a date/time, UTC unless it has an offset (exclusive); alias --end-date', aliases: ['end-date'] }),
  status: Flags.string({ description: 'success or error', options: ['success', 'error'] }),
  user: Flags.string({ description: "the app's end-user id; alias --user-id", aliases: ['user-id'] }),
  'policy-violation': Flags.boolean({ description: 'only records that broke the active policy (--no-policy-violation: only those that did not)', allowNo: true }),
}

export interface LogFilterValues {
  search?: string
  model?: string
  'min-risk'?: number
  'max-risk'?: number
  since?: string
  until?: string
  status?: string
  user?: string
  'policy-violation'?: boolean
}

/** Flags → LogQuery, checked with the API's own schema so a bad combination fails before any request. */
export function toLogQuery(f: LogFilterValues & { 'sort-by'?: string; order?: string; page?: number; limit?: number }, now = Date.now()): LogQueryInput {
  const query: LogQueryInput = {
    search: f.search,
    model: f.model,
    minRiskScore: f['min-risk'],
    maxRiskScore: f['max-risk'],
    startDate: f.since ? parseTime('since', f.since, now) : undefined,
    endDate: f.until ? parseTime('until', f.until, now) : undefined,
    status: f.status as LogQueryInput['status'],
    userId: f.user,
    policyViolation: f['policy-violation'] === undefined ? undefined : f['policy-violation'] ? 'true' : 'false',
    sortBy: f['sort-by'] as LogQueryInput['sortBy'],
    sortOrder: f.order as LogQueryInput['sortOrder'],
    page: f.page,
    limit: f.limit,
  }
  checkQuery(logQuerySchema, query, { minRiskScore: 'min-risk', maxRiskScore: 'max-risk', startDate: 'since', endDate: 'until' })
  return Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)) as LogQueryInput
}

const riskPaint = (n: number) => (n >= 80 ? c.red : n >= 50 ? c.yellow : (s: string) => s)
const risk = (n: number) => riskPaint(n)(String(n))

export function logTable(items: readonly LogResult[], now = Date.now()): string {
  return table(items, [
    { header: 'ID', get: (r) => r.id },
    { header: 'WHEN', get: (r) => relativeTime(r.timestamp, now) },
    { header: 'MODEL', get: (r) => r.model, max: 24 },
    { header: 'STATUS', get: (r) => (r.status === 'error' ? 'error' : 'ok'), paint: (s, r) => (r.status === 'error' ? c.red(s) : s) },
    { header: 'RISK', get: (r) => r.riskScore, align: 'right', paint: (s, r) => riskPaint(r.riskScore)(s) },
    { header: 'LATENCY', get: (r) => `${r.latency} ms`, align: 'right' },
    { header: 'TOKENS', get: (r) => r.tokens, align: 'right' },
    { header: 'COST', get: (r) => usd(r.cost), align: 'right' },
    { header: 'PROMPT', get: (r) => r.prompt, max: 48 },
  ])
}

/** One line per record for `logs tail`. */
export function logLine(r: LogResult, modelWidth = 0): string {
  const when = new Date(r.timestamp).toISOString().replace('T', ' ').slice(0, 19)
  const prompt = safe(r.prompt.replace(/\s+/g, ' '))
  return `${c.dim(when)}  ${safe(r.model).padEnd(modelWidth)}  ${r.status === 'error' ? c.red('error') : 'ok   '}  risk ${risk(r.riskScore).padStart(3)}  ${String(r.latency).padStart(6)} ms  ${prompt.length > 60 ? `${prompt.slice(0, 59)}…` : prompt}  ${c.dim(r.id)}`
}
