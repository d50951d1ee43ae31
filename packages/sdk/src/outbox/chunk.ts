/**
 * How the SQLite outbox packs records: one row (a "chunk") holds the records of one write, their
 * JSON bodies one per line (JSON.stringify never emits a raw newline, so a line is a record).
 * A record's seq is its chunk's seq plus its line number; the chunks' seq ranges never overlap.
 * A record that leaves its chunk early (parked, acked from part of a chunk, dropped by the cap)
 * leaves an empty line, so the others keep their seqs; the chunk goes when no line is left.
 * Pure: the store does the SQL.
 */

/** Bodies of one chunk past which the writer starts another (a row is one string in memory). */
export const MAX_CHUNK_CHARS = 4 * 1024 * 1024

/** Ascending runs of consecutive seqs, duplicates removed: [[first, last], ...]. */
export function seqRuns(seqs: readonly number[]): [number, number][] {
  if (seqs.length === 0) return []
  let sorted = seqs
  for (let i = 1; i < seqs.length; i++) {
    if (!(seqs[i]! > seqs[i - 1]!)) {
      sorted = [...seqs].sort((a, b) => a - b)
      break
    }
  }
  const runs: [number, number][] = []
  let first = sorted[0]!
  let last = first
  for (let i = 1; i < sorted.length; i++) {
    const s = sorted[i]!
    if (s === last) continue
    if (s === last + 1) last = s
    else {
      runs.push([first, last])
      first = last = s
    }
  }
  runs.push([first, last])
  return runs
}

export interface Chunk {
  seq: number
  n: number
  body: string
}

/**
 * Empties the lines of `chunk` whose seqs fall in [from, to]. Returns the new body and live
 * count, and the records taken out (seq, line index, body), in order.
 */
export function removeLines(chunk: Chunk, from: number, to: number): { body: string; live: number; removed: { seq: number; index: number; body: string }[] } {
  const lines = chunk.body.split('\n')
  const removed: { seq: number; index: number; body: string }[] = []
  const lo = Math.max(from, chunk.seq)
  const hi = Math.min(to, chunk.seq + chunk.n - 1)
  for (let s = lo; s <= hi; s++) {
    const i = s - chunk.seq
    if (!lines[i]) continue
    removed.push({ seq: s, index: i, body: lines[i]! })
    lines[i] = ''
  }
  let live = 0
  for (const l of lines) if (l) live++
  return { body: lines.join('\n'), live, removed }
}
