import type { Incident, IncidentStatus } from '@llmguard/shared'
import type { Session } from './session.js'
import { checkId } from './ids.js'

export function setIncidentStatus(session: Session, id: string, status: IncidentStatus): Promise<Incident> {
  return session.patch<Incident>(`/v1/incidents/${checkId('incident', id)}`, { status })
}
