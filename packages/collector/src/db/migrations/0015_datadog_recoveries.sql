-- Datadog delivers out of order: a retried "Triggered" can arrive after the "Recovered" that
-- ended it. Recoveries are remembered with their monitor and time, so an alert dated at or
-- before one opens nothing (webhooks/datadog.ts). Rows from before this migration have neither.
alter table datadog_events add column monitor_id text;
alter table datadog_events add column recovered_at timestamptz;
create index datadog_events_recovered_idx on datadog_events (project_id, monitor_id, recovered_at) where recovered_at is not null;
