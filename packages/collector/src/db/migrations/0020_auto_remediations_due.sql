-- Automatic remediations due (SPEC §3 "Remediation": the system applies the project's rule
-- when such an incident opens). The action used to be applied in-process after the incident
-- committed, so a crash or restart in between lost it. Now the statement that opens an
-- incident also records its due action here (incidents/store.ts upsertIncidents), when the
-- project has a rule for the incident's type, the way incident_analyses queues its analysis.
-- The row goes in the transaction that applies the action (remediation/service.ts applyDue),
-- so it is applied exactly once: at once by the instance that opened the incident, otherwise
-- by the start-up sweep or the minute job of any instance.
create table auto_remediations_due (
  incident_id uuid primary key references incidents (id) on delete cascade,
  due_at timestamptz not null default now(),
  -- applications that failed with the database reachable; past a few the row is given up
  attempts integer not null default 0
);
create index auto_remediations_due_at_idx on auto_remediations_due (due_at);
