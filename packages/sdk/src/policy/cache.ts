import { DEFAULT_POLICY, policySchema, type Policy } from '@llmguard/shared'
import type { OutboxStore } from '../outbox/store.js'
import type { PolicyFetch } from '../transport/types.js'
import { isNoop } from './apply.js'

/** Where SDKs before the tagged rows saved the policy. */
const UNTAGGED_KEY = 'policy'

/**
 * The project's policy as last seen. Kept in the outbox database, so a restart while the
 * collector is down still applies the last known policy. Calls never wait for a fetch.
 *
 * The saved row belongs to the endpoint and API key that fetched it (`scope`, their tag): an
 * outbox path shared by apps of other projects, or kept after switching key, must never apply
 * another project's policy — nor send its ETag, which the collector (ETag = version) would
 * answer with a 304 whenever the two versions happen to be equal.
 */
export class PolicyCache {
  current: Policy = DEFAULT_POLICY
  /** True when the policy changes nothing: the hot path skips it. */
  noop = true
  private etag: string | undefined
  /** Dropped after the collector refused the key, and saved so. */
  private forgotten = false
  private inflight: Promise<void> | null = null

  private readonly metaKey: string

  constructor(
    private readonly store: OutboxStore,
    scope: string,
    private readonly fetch: ((etag: string | undefined) => Promise<PolicyFetch>) | undefined,
    private readonly onError: (code: string, message: string) => void,
    /** False with the policy off (`policy: false`): the saved policy is not applied either. */
    enabled = true,
    /**
     * The outbox is this key's own default file (its name is the same tag): a policy saved by an
     * SDK from before the rows were tagged (under `policy`) is this key's, and is taken over.
     */
    private readonly adoptUntagged = false,
    /** Told when a refused key drops a policy that changed calls. */
    private readonly onForget?: () => void,
  ) {
    this.metaKey = `policy:${scope}`
    if (enabled) this.load()
  }

  private load(): void {
    let raw: string | undefined
    try {
      raw = this.store.getMeta(this.metaKey)
      if (!raw && this.adoptUntagged) raw = this.store.getMeta(UNTAGGED_KEY)
    } catch {
      return
    }
    if (!raw) return
    try {
      const saved = JSON.parse(raw) as { policy: unknown; etag?: string }
      const parsed = policySchema.safeParse(saved.policy)
      if (parsed.success) this.set(parsed.data, saved.etag)
    } catch {
      // a damaged row: the next fetch replaces it
    }
  }

  /**
   * The collector no longer takes this key (revoked, or its project deleted): the policy was
   * that project's, so it no longer applies, here or after a restart. Otherwise an endpoint a
   * remediation had disabled would stay disabled in the app for good, with nothing left on the
   * collector to roll it back. A new key starts from its own policy.
   */
  private forget(): void {
    // every refresh of a refused key lands here: once saved, there is nothing more to do
    if (this.forgotten) return
    if (!this.noop) this.onForget?.()
    this.set(DEFAULT_POLICY, undefined)
    try {
      this.store.setMeta(this.metaKey, JSON.stringify({ policy: DEFAULT_POLICY, savedAt: new Date().toISOString(), keyRefused: true }))
      this.forgotten = true
    } catch {
      // a busy file: the policy is gone from memory, and the next refused fetch saves it
    }
  }

  private set(policy: Policy, etag: string | undefined): void {
    this.current = policy
    this.noop = isNoop(policy)
    this.etag = etag
  }

  /** Fetches with If-None-Match; one at a time; never throws. */
  refresh(): Promise<void> {
    if (!this.fetch) return Promise.resolve()
    this.inflight ??= this.doRefresh(this.fetch).finally(() => {
      this.inflight = null
    })
    return this.inflight
  }

  private async doRefresh(fetch: (etag: string | undefined) => Promise<PolicyFetch>): Promise<void> {
    const res = await fetch(this.etag)
    if (res.kind === 'not-modified') return
    if (res.kind === 'error') {
      if (res.code === 'INVALID_API_KEY') this.forget()
      this.onError(`POLICY_${res.code}`, res.message)
      return
    }
    const etag = res.etag ?? `"${res.policy.version}"`
    this.forgotten = false
    this.set(res.policy, etag)
    try {
      this.store.setMeta(this.metaKey, JSON.stringify({ policy: res.policy, etag, savedAt: new Date().toISOString() }))
    } catch {
      // a busy file: the policy is still applied from memory, and saved on the next change
    }
  }
}
