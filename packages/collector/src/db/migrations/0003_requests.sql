-- LLM requests, their search index and the rollups that metrics read.

create extension if not exists pg_trgm;

create table llm_requests (
  seq bigint generated always as identity,
  project_id uuid not null references projects (id) on delete cascade,
  -- the client's UUID (idempotency key, unique per project) or one the collector made
  id uuid not null,
  prompt text not null,
  response text not null,
  model text not null,
  requested_model text,
  endpoint text,
  latency integer not null,
  time_to_first_token integer,
  tokens integer not null,
  prompt_tokens integer,
  completion_tokens integer,
  cached_tokens integer,
  reasoning_tokens integer,
  status text not null check (status in ('success', 'error')),
  error jsonb,
  stream boolean,
  user_id text,
  metadata jsonb not null default '{}',
  risk_score smallint not null,
  risk_reasons jsonb not null,
  -- USD; null = unpriced (unknown model), never a made-up 0
  cost double precision,
  policy_violation jsonb,
  -- when the call started (search, metrics and rollups)
  "timestamp" timestamptz not null,
  -- when the collector stored it (billing months, rule windows, the search indexer)
  created_at timestamptz not null default now(),
  primary key (project_id, id)
);
-- the seed's two indexes: (project, time) serves listing and date filters, (project, risk) the risk filters
create index llm_requests_project_time_idx on llm_requests (project_id, "timestamp" desc, id);
create index llm_requests_project_risk_idx on llm_requests (project_id, risk_score);
-- rows arrive in created_at order: a BRIN index costs almost nothing at insert and finds the
-- not-yet-indexed tail for search and the windows the indexer works through
create index llm_requests_created_brin on llm_requests using brin (created_at);

-- Substring search: a trigram index makes inserts ~12x slower, too slow for the ingest path. So
-- the text is indexed here by a background job, a little behind; searches combine this index
-- with a scan of the short tail it has not reached yet (see logs/store.ts).
create table llm_request_text (
  project_id uuid not null references projects (id) on delete cascade,
  id uuid not null,
  body text not null,
  primary key (project_id, id)
);
create index llm_request_text_trgm on llm_request_text using gin (body gin_trgm_ops);

-- Everything created before indexed_before is in llm_request_text.
create table search_index_state (
  singleton boolean primary key default true check (singleton),
  indexed_before timestamptz not null
);
insert into search_index_state (indexed_before) values (now());

-- Hourly totals per project and model, maintained in the same statement that stores the
-- records, so metrics never scan raw rows.
create table request_rollups (
  project_id uuid not null references projects (id) on delete cascade,
  hour timestamptz not null,
  model text not null,
  requests bigint not null,
  errors bigint not null,
  latency_sum bigint not null,
  tokens bigint not null,
  -- exact decimal sum of the records' costs; unpriced records count in `unpriced` instead
  cost_sum numeric not null,
  unpriced bigint not null,
  primary key (project_id, hour, model)
);

-- Latency distribution per project and UTC day in log buckets (5 % wide), for percentiles.
create table latency_histograms (
  project_id uuid not null references projects (id) on delete cascade,
  day date not null,
  bucket smallint not null,
  n bigint not null,
  primary key (project_id, day, bucket)
);
