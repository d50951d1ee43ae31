-- Incidents (rule triggers, the hourly anomaly job, Datadog alerts), their pending root-cause
-- analyses, and the Datadog alert ids already processed.

create table incidents (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references projects (id) on delete cascade,
  type text not null check (type in (
    'latency', 'error_rate', 'high_risk', 'cost_spike',
    'anomaly_latency', 'anomaly_error_rate', 'anomaly_volume', 'anomaly_cost', 'datadog')),
  -- the model for rules, '*' for project-wide anomalies, the monitor id for Datadog
  key text not null,
  status text not null default 'open' check (status in ('open', 'acknowledged', 'resolved')),
  severity text not null check (severity in ('low', 'medium', 'high', 'critical')),
  title text not null,
  occurrences integer not null default 1,
  first_seen_at timestamptz not null,
  last_seen_at timestamptz not null,
  acknowledged_at timestamptz,
  resolved_at timestamptz,
  metadata jsonb not null default '{}',
  -- seed IncidentRCA + source + generatedAt; null until the first analysis is stored
  rca jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
-- One unresolved incident per (project, type, key): repeats upsert into it (occurrences + 1).
-- An acknowledged incident is still unresolved, so repeats keep counting on it.
create unique index incidents_unresolved_key on incidents (project_id, type, key) where status <> 'resolved';
-- listing: newest activity first, filtered by status/type in the same scan
create index incidents_project_seen_idx on incidents (project_id, last_seen_at desc, id desc);
create index incidents_project_status_idx on incidents (project_id, status);

-- Root-cause analyses to do. A row exists from "incident opened" (or "regenerate") until the
-- analysis is stored; a worker claims it by setting claimed_until, so a crashed instance's
-- claim expires and another (or the restarted one) picks it up: a restart loses none.
create table incident_analyses (
  incident_id uuid primary key references incidents (id) on delete cascade,
  requested_at timestamptz not null default now(),
  attempts integer not null default 0,
  claimed_until timestamptz
);
create index incident_analyses_requested_idx on incident_analyses (requested_at);

-- Datadog alert ids already processed (a replay answers 200 {duplicate: true}).
create table datadog_events (
  id text primary key,
  project_id uuid not null references projects (id) on delete cascade,
  incident_id uuid references incidents (id) on delete set null,
  received_at timestamptz not null default now()
);
create index datadog_events_received_idx on datadog_events (received_at);

-- The hourly anomaly job finds the projects active in an hour without scanning every rollup.
create index request_rollups_hour_idx on request_rollups (hour);
