-- Billing: each user's plan and Stripe state, exact monthly usage, and the Stripe events seen.

-- One row per user who has left the defaults (free, active, no Stripe customer).
create table billing_accounts (
  user_id uuid primary key references users (id) on delete cascade,
  plan text not null default 'free' check (plan in ('free', 'pro', 'enterprise')),
  -- the custom limit of an enterprise account (set by an administrator); null for the others
  monthly_limit bigint check (monthly_limit >= 0),
  check ((plan = 'enterprise') = (monthly_limit is not null)),
  -- Stripe's subscription status, or 'active' without a subscription
  status text not null default 'active',
  stripe_customer_id text unique,
  stripe_subscription_id text,
  current_period_end timestamptz,
  cancel_at_period_end boolean not null default false,
  -- `created` of the last Stripe event applied: Stripe does not deliver in order, so an
  -- older event arriving late never overwrites a newer state
  stripe_event_at timestamptz,
  updated_at timestamptz not null default now()
);

-- Records stored per user per UTC month, across all of the user's projects. Ingest reserves
-- here before storing (a conditional UPDATE, so concurrent batches never pass the limit) and
-- settles the reservation in the transaction that stores the batch, so once a batch is done
-- `used` equals the records stored in that month exactly.
create table usage_months (
  user_id uuid not null references users (id) on delete cascade,
  -- the first day of the UTC month
  month date not null,
  used bigint not null default 0 check (used >= 0),
  -- what the last reservation granted: PostgreSQL 15 has no OLD in RETURNING, so the
  -- grant is written beside the count it was computed from
  last_granted integer not null default 0,
  primary key (user_id, month)
);

-- Stripe event ids already processed: a redelivery is acknowledged and changes nothing.
create table stripe_events (
  id text primary key,
  type text not null,
  user_id uuid references users (id) on delete set null,
  received_at timestamptz not null default now()
);
create index stripe_events_received_idx on stripe_events (received_at);
