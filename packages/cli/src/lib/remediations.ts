import type { Remediation } from '@llmguard/shared'
import { c, relativeTime, table } from './output.js'

const state = (s: Remediation['state']) => (s === 'active' ? c.green : c.dim)

export function remediationTable(items: readonly Remediation[]): string {
  return table(items, [
    { header: 'ID', get: (r) => r.id },
    { header: 'ACTION', get: (r) => r.actionType },
    { header: 'PARAMETERS', get: (r) => Object.entries(r.parameters).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' '), max: 50 },
    { header: 'STATE', get: (r) => r.state, paint: (s, r) => state(r.state)(s) },
    { header: 'BY', get: (r) => (r.automatic ? 'automatic' : r.appliedBy.kind) },
    { header: 'APPLIED', get: (r) => relativeTime(r.appliedAt) },
    // an action that ended (rolled back, expired) no longer expires: when it ended instead
    { header: 'EXPIRES', get: (r) => (r.state !== 'active' ? (r.endedAt ? `ended ${relativeTime(r.endedAt)}` : '-') : r.expiresAt ? relativeTime(r.expiresAt) : '-') },
  ])
}
