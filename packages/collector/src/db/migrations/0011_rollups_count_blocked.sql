-- Calls the SDK blocked itself (a disabled endpoint, a user's rate limit, a risky prompt) are
-- stored as errors with metadata.llmguardBlocked. They stay errors in the metrics (the app's
-- call failed), but they never reached the provider: the incident rules and the anomaly job
-- judge the provider's error rate without them, or a remediation's own blocks would open an
-- error_rate incident (and its automatic action) of their own. The count starts with this
-- migration: the rules look back at most a day.
alter table request_rollups add column blocked bigint not null default 0;

create or replace function llm_requests_rollups() returns trigger language plpgsql as $$
begin
  insert into request_rollups as r (project_id, hour, model, requests, errors, latency_sum, tokens, cost_sum, unpriced, blocked)
  select project_id, date_trunc('hour', "timestamp"), model, count(*),
    count(*) filter (where status = 'error'), sum(latency), sum(tokens),
    coalesce(sum(cost::numeric), 0), count(*) filter (where cost is null),
    count(*) filter (where status = 'error' and metadata ? 'llmguardBlocked')
  from new_rows
  group by 1, 2, 3
  order by 1, 2, 3
  on conflict (project_id, hour, model) do update set
    requests = r.requests + excluded.requests,
    errors = r.errors + excluded.errors,
    latency_sum = r.latency_sum + excluded.latency_sum,
    tokens = r.tokens + excluded.tokens,
    cost_sum = r.cost_sum + excluded.cost_sum,
    unpriced = r.unpriced + excluded.unpriced,
    blocked = r.blocked + excluded.blocked;

  -- 5 %-wide log buckets of latency (LATENCY_BUCKET_BASE in ingest/store.ts)
  insert into latency_histograms as h (project_id, day, bucket, n)
  select project_id, "timestamp"::date, floor(ln(latency + 1) / ln(1.05::float8))::smallint, count(*)
  from new_rows
  group by 1, 2, 3
  order by 1, 2, 3
  on conflict (project_id, day, bucket) do update set n = h.n + excluded.n;
  return null;
end
$$;
