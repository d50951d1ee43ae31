import type { BillingPlan } from '@llmguard/shared'
import type { Db } from '../db/connect.js'

/** A user's billing row; users without one are on the defaults (free, active, no Stripe). */
export interface BillingAccount {
  userId: string
  plan: BillingPlan
  monthlyLimit: number | null
  status: string
  stripeCustomerId: string | null
  stripeSubscriptionId: string | null
  currentPeriodEnd: Date | null
  cancelAtPeriodEnd: boolean
  stripeEventAt: Date | null
  /** The subscription whose deletion was applied last: none of its later events applies. */
  endedSubscriptionId: string | null
  /** The customer last unlinked because Stripe no longer had it. */
  deletedCustomerId: string | null
}

export const defaultAccount = (userId: string): BillingAccount => ({
  userId,
  plan: 'free',
  monthlyLimit: null,
  status: 'active',
  stripeCustomerId: null,
  stripeSubscriptionId: null,
  currentPeriodEnd: null,
  cancelAtPeriodEnd: false,
  stripeEventAt: null,
  endedSubscriptionId: null,
  deletedCustomerId: null,
})

const ACCOUNT_COLUMNS = (db: Db) => db`
  user_id as "userId", plan, monthly_limit as "monthlyLimit", status,
  stripe_customer_id as "stripeCustomerId", stripe_subscription_id as "stripeSubscriptionId",
  current_period_end as "currentPeriodEnd", cancel_at_period_end as "cancelAtPeriodEnd",
  stripe_event_at as "stripeEventAt", ended_subscription_id as "endedSubscriptionId",
  deleted_customer_id as "deletedCustomerId"`

export async function findAccount(db: Db, userId: string): Promise<BillingAccount | undefined> {
  const [row] = await db<BillingAccount[]>`select ${ACCOUNT_COLUMNS(db)} from billing_accounts where user_id = ${userId}`
  return row
}

/** The account holding a Stripe customer (locked when inside a transaction and `forUpdate`). */
export async function findAccountByCustomer(db: Db, customerId: string): Promise<BillingAccount | undefined> {
  const [row] = await db<BillingAccount[]>`select ${ACCOUNT_COLUMNS(db)} from billing_accounts where stripe_customer_id = ${customerId} for update`
  return row
}

/** Locks the user's account row for the rest of the transaction, creating it with the defaults. */
export async function lockAccount(db: Db, userId: string): Promise<BillingAccount> {
  await db`insert into billing_accounts (user_id) values (${userId}) on conflict (user_id) do nothing`
  const [row] = await db<BillingAccount[]>`select ${ACCOUNT_COLUMNS(db)} from billing_accounts where user_id = ${userId} for update`
  return row!
}

export type AccountChange = Partial<Omit<BillingAccount, 'userId'>>

const COLUMN: Record<keyof AccountChange, string> = {
  plan: 'plan',
  monthlyLimit: 'monthly_limit',
  status: 'status',
  stripeCustomerId: 'stripe_customer_id',
  stripeSubscriptionId: 'stripe_subscription_id',
  currentPeriodEnd: 'current_period_end',
  cancelAtPeriodEnd: 'cancel_at_period_end',
  stripeEventAt: 'stripe_event_at',
  endedSubscriptionId: 'ended_subscription_id',
  deletedCustomerId: 'deleted_customer_id',
}

export async function updateAccount(db: Db, userId: string, change: AccountChange): Promise<BillingAccount> {
  const row: Record<string, unknown> = { updated_at: new Date() }
  for (const [key, value] of Object.entries(change)) {
    if (value !== undefined) row[COLUMN[key as keyof AccountChange]] = value
  }
  await db`insert into billing_accounts (user_id) values (${userId}) on conflict (user_id) do nothing`
  const [updated] = await db<BillingAccount[]>`
    update billing_accounts set ${db(row)} where user_id = ${userId} returning ${ACCOUNT_COLUMNS(db)}`
  return updated!
}

/**
 * Serialises the creation of the user's Stripe customer across instances until the transaction
 * ends. An advisory lock rather than the account row's: webhooks and the admin's plan changes
 * for the user need not wait for a Stripe call.
 */
export async function lockCustomerCreation(tx: Db, userId: string): Promise<void> {
  await tx`select pg_advisory_xact_lock(hashtext(${`llmguard:stripe-customer:${userId}`}))`
}

/**
 * Links a Stripe customer to the user unless one is linked already; returns the linked one
 * (so two concurrent first checkouts agree on a single customer).
 */
export async function linkCustomer(db: Db, userId: string, customerId: string): Promise<string> {
  await db`insert into billing_accounts (user_id) values (${userId}) on conflict (user_id) do nothing`
  const [row] = await db<{ id: string }[]>`
    update billing_accounts set stripe_customer_id = coalesce(stripe_customer_id, ${customerId}), updated_at = now()
    where user_id = ${userId} returning stripe_customer_id as id`
  return row!.id
}

/** Forgets a customer Stripe no longer has (only if it is still the linked one). */
export async function unlinkCustomer(db: Db, userId: string, customerId: string): Promise<void> {
  await db`
    update billing_accounts set stripe_customer_id = null, deleted_customer_id = ${customerId}, updated_at = now()
    where user_id = ${userId} and stripe_customer_id = ${customerId}`
}

export async function userExists(db: Db, userId: string): Promise<{ email: string } | undefined> {
  const [row] = await db<{ email: string }[]>`select email from users where id = ${userId}`
  return row
}

/** Claims a Stripe event id; false when it was processed before. */
export async function claimEvent(db: Db, id: string, type: string): Promise<boolean> {
  const rows = await db`insert into stripe_events (id, type) values (${id}, ${type}) on conflict (id) do nothing returning id`
  return rows.length > 0
}

export async function noteEventUser(db: Db, id: string, userId: string): Promise<void> {
  await db`update stripe_events set user_id = ${userId} where id = ${id}`
}

// ---- usage -----------------------------------------------------------------------------

/** The plan limits in force, for the SQL that computes a user's limit. */
export interface PlanLimitValues {
  free: number
  pro: number
}

/**
 * Reserves up to `n` records of the user's month, never past the limit: one conditional
 * UPDATE of the user-month row. Concurrent reservations queue on the row lock and each
 * computes its grant from the count the previous one left (READ COMMITTED re-reads the
 * updated row), so grants never add up past the limit. `limits` undefined: no limit.
 * Returns how many were granted (the first `granted` records may be stored).
 */
export async function reserve(db: Db, userId: string, month: string, n: number, limits: PlanLimitValues | undefined): Promise<number> {
  const limit = limits
    ? db`(select coalesce(
          (select case b.plan when 'enterprise' then b.monthly_limit when 'pro' then ${limits.pro}::bigint else ${limits.free}::bigint end
           from billing_accounts b where b.user_id = ${userId}),
          ${limits.free}::bigint))`
    : db`${Number.MAX_SAFE_INTEGER}::bigint`
  for (let attempt = 0; attempt < 2; attempt++) {
    const [row] = await db<{ granted: number }[]>`
      update usage_months set
        used = used + least(${n}::bigint, greatest(${limit} - used, 0)),
        last_granted = least(${n}::bigint, greatest(${limit} - used, 0))
      where user_id = ${userId} and month = ${month}
      returning last_granted as granted`
    if (row) return row.granted
    // the user's first batch of the month: create the row, then reserve on it
    await db`insert into usage_months (user_id, month) values (${userId}, ${month}) on conflict do nothing`
  }
  throw new Error('usage row vanished while reserving')
}

/** Adds `delta` (negative: gives back) to the user's month. */
export async function adjustUsage(db: Db, userId: string, month: string, delta: number): Promise<void> {
  if (delta === 0) return
  await db`
    insert into usage_months (user_id, month, used) values (${userId}, ${month}, greatest(${delta}::bigint, 0))
    on conflict (user_id, month) do update set used = greatest(usage_months.used + ${delta}::bigint, 0)`
}

export async function usageOf(db: Db, userId: string, month: string): Promise<number> {
  const [row] = await db<{ used: number }[]>`select used from usage_months where user_id = ${userId} and month = ${month}`
  return row?.used ?? 0
}

/** Which of these ids the project stored already (duplicates need no quota). */
export async function storedIds(db: Db, projectId: string, ids: string[]): Promise<Set<string>> {
  const rows = await db<{ id: string }[]>`select id from llm_requests where project_id = ${projectId} and id = any(${ids}::uuid[])`
  return new Set(rows.map((r) => r.id))
}
