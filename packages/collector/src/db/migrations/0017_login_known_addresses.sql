-- Where each account last logged in from (the address as the login limits count it, an IPv6
-- /64). Anyone who knows an email can spend the account's limit of failed logins from enough
-- addresses; a place the owner logged in from in the last 30 days is not held to it, so that
-- does not lock them out where they usually log in (auth/service.ts). Emails, not user ids: the
-- limits are checked before the account is looked up. Pruned after 30 days (housekeeping).
create table login_known_addresses (
  email text not null,
  address text not null,
  last_login_at timestamptz not null default now(),
  primary key (email, address)
);
create index login_known_addresses_last_idx on login_known_addresses (last_login_at);
