-- The housekeeping job (jobs/housekeeping.ts) deletes bookkeeping rows by age, a chunk at a
-- time, oldest first. stripe_events and datadog_events have their received_at index already;
-- these two tables had no index that starts with the column their age is judged by (rca_calls'
-- index starts with user_id), so every chunk would scan the whole table. Each costs one more
-- index entry per row written: per login or token refresh, per OpenAI analysis.
-- job_runs gets none: it holds a couple of rows an hour, a few hundred once pruned.
create index refresh_tokens_expires_idx on refresh_tokens (expires_at);
create index rca_calls_at_idx on rca_calls (at);
