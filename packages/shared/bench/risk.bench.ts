/**
 * Micro-benchmark of scoreRisk (not a test: it asserts nothing). Run from the repo root:
 *   npx tsx packages/shared/bench/risk.bench.ts
 * Prints mean µs per call for a few record shapes; the numbers go to docs/risk-scoring.md.
 */
import { scoreRisk } from '../src/index.js'

const words = 'the quick brown fox jumps over the lazy dog while a model answers questions about invoices, dates like 2024-05-01 and order 48213 '
const text = (n: number) => words.repeat(Math.ceil(n / words.length)).slice(0, n)

const cases: { name: string; input: Parameters<typeof scoreRisk>[0] }[] = [
  { name: 'typical (1 KB prompt, 2 KB response, clean)', input: { prompt: text(1000), response: text(2000), model: 'gpt-4o-mini', tokens: 700, status: 'success' } },
  {
    name: 'typical with findings (4 KB, email + card + key)',
    input: {
      prompt: `${text(2000)} mail jane.doe@example.com card 4111 1111 1111 1111 key sk-proj-abc123DEF456ghi789JKL012mno ${text(2000)}`,
      response: text(2000),
      model: 'gpt-3.5-turbo',
      tokens: 5000,
      status: 'error',
    },
  },
  { name: 'digit-heavy 4 KB (tables of numbers)', input: { prompt: Array.from({ length: 400 }, (_, i) => `${i * 7919} 12.5 `).join('').slice(0, 4000), response: '', model: 'gpt-4o', tokens: 10 } },
  { name: '1 MB prompt + 1 MB response (scan capped at 64 KiB each)', input: { prompt: text(1_000_000), response: text(1_000_000), model: 'o3-mini', tokens: 400_000 } },
  { name: 'adversarial 1 MB: one digit run + one letter run', input: { prompt: '1'.repeat(1_000_000), response: 'a'.repeat(1_000_000), model: 'gpt-4o', tokens: 0 } },
]

const keywords = ['project-falcon', 'acme internal', 'customer list']
for (const c of cases) {
  const budgetMs = 1000
  let n = 0
  // warm-up so the JIT has compiled the regexes and the scorer
  for (let i = 0; i < 200; i++) scoreRisk(c.input, { sensitiveKeywords: keywords })
  const start = process.hrtime.bigint()
  let elapsed = 0n
  while (elapsed < BigInt(budgetMs) * 1_000_000n) {
    for (let i = 0; i < 50; i++) scoreRisk(c.input, { sensitiveKeywords: keywords })
    n += 50
    elapsed = process.hrtime.bigint() - start
  }
  const us = Number(elapsed) / 1000 / n
  console.log(`${c.name.padEnd(62)} ${us.toFixed(2).padStart(9)} µs/call  (${n} calls)`)
}
