-- Accounts and access: users, refresh-token families, projects, API keys, project settings,
-- and the bookkeeping of login attempt limits and cross-instance rate limits.

create table users (
  id uuid primary key default gen_random_uuid(),
  -- stored lower-cased: emails are case-insensitive and unique
  email text not null unique check (email = lower(email)),
  name text,
  password_hash text not null,
  role text not null default 'user' check (role in ('user', 'admin')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- One row per refresh token ever issued. A login starts a family; each refresh marks the
-- presented token rotated and issues its successor in the same family. Presenting a rotated
-- token again is theft or a replay: the whole family is revoked.
create table refresh_tokens (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references users (id) on delete cascade,
  family_id uuid not null,
  -- HMAC-SHA256 of the token with REFRESH_TOKEN_SECRET; the token itself is never stored
  token_hash text not null unique,
  expires_at timestamptz not null,
  created_at timestamptz not null default now(),
  rotated_at timestamptz,
  revoked_at timestamptz
);
create index refresh_tokens_family_idx on refresh_tokens (family_id);
create index refresh_tokens_user_idx on refresh_tokens (user_id);

create table projects (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references users (id) on delete cascade,
  name text not null,
  -- bumped by every change of the effective SDK policy (settings now, remediations later)
  policy_version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index projects_user_idx on projects (user_id, created_at desc, id);

create table api_keys (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references projects (id) on delete cascade,
  name text,
  -- HMAC-SHA256 of the whole key with API_KEY_PEPPER: requests look keys up by this
  key_hash text not null unique,
  last4 text not null,
  created_at timestamptz not null default now(),
  revoked_at timestamptz,
  -- the key this one replaced by rotation
  rotated_from uuid references api_keys (id) on delete set null
);
create index api_keys_project_idx on api_keys (project_id, created_at desc, id);

-- Project settings as one validated JSON document (schema in @llmguard/shared settings.ts):
-- later features add their fields to the schema without a migration.
create table project_settings (
  project_id uuid primary key references projects (id) on delete cascade,
  settings jsonb not null default '{}',
  updated_at timestamptz not null default now()
);

-- Login attempts per email and per client address in fixed windows (a write per login is
-- fine: each login already costs an argon2 hash).
create table login_attempts (
  subject text not null,
  window_start timestamptz not null,
  attempts integer not null default 0,
  primary key (subject, window_start)
);

-- Rate-limit counts per (subject, second, instance), written by each instance every ~250 ms
-- rather than per request; other instances read them to share one budget. Losing them in a
-- crash loses at most a minute of counts, so they skip the WAL.
create unlogged table rate_limit_counts (
  subject text not null,
  second bigint not null,
  instance_id uuid not null,
  count integer not null,
  primary key (subject, second, instance_id)
);
create index rate_limit_counts_second_idx on rate_limit_counts (second);

-- Live collector instances (heartbeat), so each knows how many share a rate-limit budget.
create unlogged table collector_instances (
  id uuid primary key,
  seen_at timestamptz not null default now()
);
