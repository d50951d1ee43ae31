-- Calls the SDK blocked itself (a disabled endpoint, a user's rate limit, a risky prompt) are
-- stored as errors with metadata.llmguardBlocked. They stay errors in the metrics (the app's
-- call failed), but they never reached the provider: the incident rules and the anomaly job
-- judge the provider's error rate without them, or a remediation's own blocks would open an
-- error_rate incident (and its automatic action) of their own. A blocked call costs $0 (a
-- failed call with no usage), so `blocked_priced` takes them out of the cost rule's priced
-- requests too: a long disable_endpoint would otherwise fill the daily baseline with $0 calls.
-- Inserts of instances still on the old trigger wait from here to the commit: in flight ones
-- commit first (the backfill below sees their rows), later ones fire the new trigger. Ingest
-- waits for the backfill meanwhile (one day of rows, read through the BRIN index).
lock table llm_requests in share row exclusive mode;
alter table request_rollups add column blocked bigint not null default 0;
alter table request_rollups add column blocked_priced bigint not null default 0;

-- The rules and the anomaly job look back at most 25 hours: fill those in from the rows (read by
-- arrival through the BRIN index, so a big table is not scanned).
update request_rollups r set blocked = b.blocked, blocked_priced = b.priced
from (
  select project_id, date_trunc('hour', "timestamp") as hour, model, count(*) as blocked, count(cost) as priced
  from llm_requests
  where created_at >= now() - interval '26 hours' and "timestamp" >= now() - interval '26 hours'
    and status = 'error' and metadata ? 'llmguardBlocked'
  group by 1, 2, 3
) b
where r.project_id = b.project_id and r.hour = b.hour and r.model = b.model;

create or replace function llm_requests_rollups() returns trigger language plpgsql as $$
begin
  insert into request_rollups as r (project_id, hour, model, requests, errors, latency_sum, tokens, cost_sum, unpriced, blocked, blocked_priced)
  select project_id, date_trunc('hour', "timestamp"), model, count(*),
    count(*) filter (where status = 'error'), sum(latency), sum(tokens),
    coalesce(sum(cost::numeric), 0), count(*) filter (where cost is null),
    count(*) filter (where status = 'error' and metadata ? 'llmguardBlocked'),
    count(*) filter (where status = 'error' and metadata ? 'llmguardBlocked' and cost is not null)
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
    blocked = r.blocked + excluded.blocked,
    blocked_priced = r.blocked_priced + excluded.blocked_priced;

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
