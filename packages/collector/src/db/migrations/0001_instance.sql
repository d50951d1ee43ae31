-- Values every collector instance on this database must agree on, e.g. the development
-- secrets generated on first start when JWT_SECRET and friends are not configured.
create table instance_secrets (
  name text primary key,
  value text not null,
  created_at timestamptz not null default now()
);

-- Jobs that must run once per period across all instances record each run here.
create table job_runs (
  job text not null,
  period text not null,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  primary key (job, period)
);
