-- The subscription whose deletion was applied last. Stripe's `created` has whole seconds, so a
-- late `customer.subscription.updated` of the same second as the deletion is not older than it:
-- a deleted subscription never comes back in Stripe, so no later event of it is applied.
alter table billing_accounts add column ended_subscription_id text;
-- The customer last unlinked because Stripe no longer had it (deleted in the dashboard): the
-- next customer is created under an idempotency key naming it, not replayed as the deleted one.
alter table billing_accounts add column deleted_customer_id text;
