import { LATENCY_BUCKET_BASE } from '../ingest/store.js'

/**
 * Latency percentiles from log-bucket histograms. A latency v (ms) falls in bucket
 * floor(ln(v + 1) / ln(1.05)); the bucket is reported by its geometric middle, so a percentile
 * is within ±2.5 % of (true value + 1 ms) — the documented error of p50/p95/p99.
 */
export function bucketValue(bucket: number): number {
  const low = LATENCY_BUCKET_BASE ** bucket
  const mid = Math.sqrt(low * low * LATENCY_BUCKET_BASE)
  return Math.max(0, Math.round((mid - 1) * 10) / 10)
}

export function latencyBucket(latency: number): number {
  return Math.floor(Math.log(latency + 1) / Math.log(LATENCY_BUCKET_BASE))
}

/** Nearest-rank percentile (the smallest value with at least p·n values at or below it). */
export function percentile(histogram: { bucket: number; n: number }[], p: number): number | null {
  const total = histogram.reduce((sum, h) => sum + h.n, 0)
  if (total === 0) return null
  const rank = Math.max(1, Math.ceil(p * total))
  let seen = 0
  for (const h of [...histogram].sort((a, b) => a.bucket - b.bucket)) {
    seen += h.n
    if (seen >= rank) return bucketValue(h.bucket)
  }
  return bucketValue(histogram.at(-1)!.bucket)
}
