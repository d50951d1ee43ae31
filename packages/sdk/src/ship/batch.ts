import { MAX_BATCH_RECORDS } from '@llmguard/shared'

/** The collector's body limit (after decompression), with room for the envelope. */
export const MAX_BATCH_BYTES = 5 * 1024 * 1024 - 1024

export interface Row {
  seq: number
  body: string
  bytes: number
}

/** The longest prefix of rows within the record and byte limits; at least one row. Pure. */
export function takeBatch<T extends Row>(rows: readonly T[], maxRecords = MAX_BATCH_RECORDS, maxBytes = MAX_BATCH_BYTES): T[] {
  const out: T[] = []
  let bytes = 16
  for (const row of rows) {
    if (out.length >= maxRecords) break
    if (out.length > 0 && bytes + row.bytes + 1 > maxBytes) break
    out.push(row)
    bytes += row.bytes + 1
  }
  return out
}

/** The request body from stored JSON rows, without parsing them again. */
export function batchBody(rows: readonly Row[]): string {
  let s = '{"records":['
  for (let i = 0; i < rows.length; i++) s += (i ? ',' : '') + rows[i]!.body
  return s + ']}'
}
