import type { Remediation } from '@llmguard/shared'
import { c, relativeTime, table } from './output.js'

const state = (s: Remediation['state']) => (s === 'active' ? c.green(s) : c.dim(s))

export function remediationTable(items: readonly Remediation[]): string {
  return table(items, [
    { header: 'ID', get: (r) => r.id },
    { header: 'ACTION', get: (r) => r.actionType },
    { header: 'PARAMETERS', get: (r) => Object.entries(r.parameters).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' '), max: 50 },
    { header: 'STATE', get: (r) => state(r.state) },
    { header: 'BY', get: (r) => (r.automatic ? 'automatic' : r.appliedBy.kind) },
    { header: 'APPLIED', get: (r) => relativeTime(r.appliedAt) },
    // an action that ended (rolled back, expired) no longer expires: when it ended instead
    { header: 'EXPIRES', get: (r) => (r.state !== 'active' ? (r.endedAt ? `ended ${relativeTime(r.endedAt)}` : '-') : r.expiresAt ? relativeTime(r.expiresAt) : '-') },
  ])
}
