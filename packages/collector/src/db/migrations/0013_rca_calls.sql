-- OpenAI root-cause analyses asked for, per user (the owner of the incident's project): every
-- incident opened queues one, and a record's model name is free text, so one batch could open
-- hundreds. RCA_DAILY_LIMIT bounds what one user's traffic can spend on the operator's key.
create table rca_calls (
  user_id uuid not null references users (id) on delete cascade,
  at timestamptz not null default now()
);
create index rca_calls_user_at_idx on rca_calls (user_id, at);
