-- Remediation actions (SPEC §3 "Remediation") and their audit trail. The active actions of a
-- project, in `seq` order, are layers over its settings-built policy (remediation/overlay.ts):
-- the effective policy is recomputed from them, so a rollback only has to end one row.

create table remediations (
  id uuid primary key default gen_random_uuid(),
  -- apply order; actions of one project are serialised by a lock on its projects row, so seq
  -- order is commit order
  seq bigint generated always as identity,
  project_id uuid not null references projects (id) on delete cascade,
  incident_id uuid not null references incidents (id) on delete cascade,
  action_type text not null check (action_type in (
    'switch_model', 'increase_safety_threshold', 'disable_endpoint',
    'reset_settings', 'change_system_prompt', 'rate_limit_user')),
  parameters jsonb not null,
  -- the touched policy fields just before and after the action (remediation PolicyFields shape)
  before jsonb not null,
  after jsonb not null,
  state text not null default 'active' check (state in ('active', 'rolled_back', 'expired')),
  automatic boolean not null default false,
  -- null = applied by the system (an automatic rule)
  applied_by uuid references users (id) on delete set null,
  applied_at timestamptz not null,
  -- automatic actions only: when the revert job ends it
  expires_at timestamptz,
  ended_at timestamptz
);
-- the overlay reads a project's active layers in order on every policy read
create index remediations_active_idx on remediations (project_id, seq) where state = 'active';
-- listing per incident, newest first
create index remediations_incident_idx on remediations (incident_id, seq desc);
-- the revert job finds what is due without scanning ended rows
create index remediations_expiry_idx on remediations (expires_at) where state = 'active' and expires_at is not null;
-- an incident opens once, but its opened hook may run on any instance: one automatic action each
create unique index remediations_automatic_once on remediations (incident_id) where automatic;

create table remediation_audit (
  id bigint generated always as identity primary key,
  remediation_id uuid not null references remediations (id) on delete cascade,
  event text not null check (event in ('applied', 'rolled_back', 'expired')),
  -- 'user' with actor_user_id, or 'system'
  actor_kind text not null check (actor_kind in ('user', 'system')),
  actor_user_id uuid references users (id) on delete set null,
  at timestamptz not null,
  before jsonb not null,
  after jsonb not null
);
create index remediation_audit_remediation_idx on remediation_audit (remediation_id, id);
