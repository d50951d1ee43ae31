-- The rollups are maintained by PostgreSQL itself, from the rows each statement inserted into
-- llm_requests: a statement-level trigger reads the statement's transition table (only the rows
-- actually inserted, so an INSERT … ON CONFLICT DO NOTHING counts a duplicate nowhere).
--
-- Why a trigger rather than rollup upserts sent by the collector: a batch stored by COPY is
-- then one statement in its own transaction (COPY and rollups commit together, nothing to send
-- after it), so the rollup rows that concurrent batches of a project share are locked only for
-- the statement's own run, never while the collector's event loop gets round to the next
-- statement; and the rows need not be sent twice (once as COPY, once as JSON for the rollups).
--
-- Groups are upserted in key order: concurrent statements lock the shared rows in one order.
-- Costs are summed as numeric: exact decimal totals whatever the insert order.

create function llm_requests_rollups() returns trigger language plpgsql as $$
begin
  insert into request_rollups as r (project_id, hour, model, requests, errors, latency_sum, tokens, cost_sum, unpriced)
  select project_id, date_trunc('hour', "timestamp"), model, count(*),
    count(*) filter (where status = 'error'), sum(latency), sum(tokens),
    coalesce(sum(cost::numeric), 0), count(*) filter (where cost is null)
  from new_rows
  group by 1, 2, 3
  order by 1, 2, 3
  on conflict (project_id, hour, model) do update set
    requests = r.requests + excluded.requests,
    errors = r.errors + excluded.errors,
    latency_sum = r.latency_sum + excluded.latency_sum,
    tokens = r.tokens + excluded.tokens,
    cost_sum = r.cost_sum + excluded.cost_sum,
    unpriced = r.unpriced + excluded.unpriced;

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

create trigger llm_requests_rollups
  after insert on llm_requests
  referencing new table as new_rows
  for each statement execute function llm_requests_rollups();
