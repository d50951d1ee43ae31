import { MAX_METADATA_BYTES, MAX_TEXT_BYTES } from '@llmguard/shared'

/**
 * Cuts a string to at most `maxBytes` of UTF-8 without splitting a character. The collector
 * rejects a whole record over the limit, so an oversize prompt is better kept truncated.
 */
export function truncateUtf8(s: string, maxBytes = MAX_TEXT_BYTES): string {
  // a UTF-16 unit is at most 3 UTF-8 bytes: short strings never need the byte count
  if (s.length * 3 <= maxBytes) return s
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s
  let cut = Buffer.from(s, 'utf8').subarray(0, maxBytes).toString('utf8')
  // a partial character at the cut decodes to U+FFFD: drop it
  if (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1)
  return cut
}

/** Metadata over the contract's limit would get the record rejected: keep a note instead. */
export function boundMetadata(m: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!m) return undefined
  let json: string
  try {
    json = JSON.stringify(m)
  } catch {
    return { llmguardNote: 'metadata was not serialisable' }
  }
  if (json.length * 3 <= MAX_METADATA_BYTES || Buffer.byteLength(json, 'utf8') <= MAX_METADATA_BYTES) return m
  return { llmguardNote: 'metadata over 16 KB was dropped' }
}
