-- 0017 keyed the addresses an account logged in from by email: they outlived an email change
-- and went to the next account registering that email. Keyed by user now (and gone with it);
-- the rows of 0017, a few minutes' worth at most, are dropped (an address is learnt again at
-- the next login).
drop table login_known_addresses;
create table login_known_addresses (
  user_id uuid not null references users (id) on delete cascade,
  address text not null,
  last_login_at timestamptz not null default now(),
  primary key (user_id, address)
);
create index login_known_addresses_last_idx on login_known_addresses (last_login_at);
