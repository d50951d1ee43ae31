import type { Policy } from '@llmguard/shared'
import type { SendResult } from '../ship/result.js'

export type PolicyFetch =
  | { kind: 'ok'; policy: Policy; etag: string | undefined }
  | { kind: 'not-modified' }
  | { kind: 'error'; code: string; message: string; status?: number }

/** The SDK's only door to the network; the undici adapter implements it. */
export interface Transport {
  /** Sends `{"records":[…]}` (already JSON) to the batch endpoint. */
  sendBatch(json: string): Promise<SendResult>
  fetchPolicy(etag: string | undefined): Promise<PolicyFetch>
  /** Waits for requests in flight, then closes the connections. */
  close(): Promise<void>
  /** Aborts requests in flight and closes the connections now. */
  destroy?(): void
}
