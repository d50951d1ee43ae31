-- Each (project, anomaly type, hour) the anomaly detection counted. An hour's anomaly counts
-- once: before, "counted" was read from the project's unresolved incidents, so resolving one
-- made the next detect of the same hour open it again (and run its automatic remediation
-- again), and two detects at once could both count it. The primary key makes the claim atomic.
-- Pruned by the housekeeping job two days after the hour: the job looks back a day at most,
-- the on-demand detect at the last complete hour.
create table anomaly_hours (
  project_id uuid not null references projects (id) on delete cascade,
  type text not null,
  hour timestamptz not null,
  primary key (project_id, type, hour)
);
create index anomaly_hours_hour_idx on anomaly_hours (hour);
-- the hours the open incidents counted already (their metadata names the last one)
insert into anomaly_hours (project_id, type, hour)
select project_id, type, (metadata->>'hour')::timestamptz from incidents
where starts_with(type, 'anomaly_') and metadata ? 'hour' and last_seen_at > now() - interval '2 days'
on conflict do nothing;
