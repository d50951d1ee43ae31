/** Terminal output: colour only on a TTY, aligned tables, relative times, a small bar chart. */

const useColour = (stream: NodeJS.WriteStream = process.stdout) =>
  Boolean(stream.isTTY) && !process.env.NO_COLOR && process.env.TERM !== 'dumb'

const paint = (open: number, close: number) => (s: string) => (useColour() ? `\u001b[${open}m${s}\u001b[${close}m` : s)
export const c = {
  bold: paint(1, 22),
  dim: paint(2, 22),
  red: paint(31, 39),
  green: paint(32, 39),
  yellow: paint(33, 39),
  cyan: paint(36, 39),
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g
/** Printed width: escape codes take no columns. */
export const width = (s: string) => [...s.replace(ANSI, '')].length

/**
 * Collector data is typed by an app's end users: printed raw, an ESC in a prompt would be the
 * terminal's command (OSC 52 writes the clipboard, ESC[2J clears the screen). Every C0 and C1
 * control and DEL is shown as `\xNN` instead; `lines` keeps newlines and tabs for multi-line
 * bodies (a prompt as it was written).
 */
export function safe(text: string, { lines = false } = {}): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(lines ? /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g : /[\u0000-\u001f\u007f-\u009f]/g, hex)
}
const hex = (ch: string) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`

// only the styles `c` paints with: any other escape sequence did not come from the CLI
// eslint-disable-next-line no-control-regex
const FOREIGN = /\u001b\[(?:1|2|22|31|32|33|36|39)m|[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g
/**
 * The last line of defence before a terminal, for any text a command prints: the CLI's own
 * colours pass, every other control is shown as `\xNN` (newlines and tabs kept). Collector data
 * should have gone through `safe` already; this catches what a message quotes of it.
 */
export const terminalSafe = (text: string) => text.replace(FOREIGN, (m) => (m.length > 1 ? m : hex(m)))

export interface Column<T> {
  header: string
  get: (row: T) => unknown
  align?: 'left' | 'right'
  /** Longer values are cut with an ellipsis. */
  max?: number
  /** What a missing value shows (default `-`; `''` for a marker column, blank where it does not apply). */
  empty?: string
  /** Colour for the cell, applied after the value is made safe (a value's own escapes never reach the terminal). */
  paint?: (text: string, row: T) => string
}

/** A value as one line of text, controls shown as `\xNN` (see `safe`). */
function cell(value: unknown, empty = '-'): string {
  if (value === null || value === undefined || value === '') return empty
  // JSON escapes C0 controls but not C1 ones
  if (typeof value === 'object') return safe(JSON.stringify(value))
  return safe(String(value).replace(/\s+/g, ' '))
}

function cut(s: string, max: number | undefined): string {
  if (!max || width(s) <= max) return s
  return `${[...s.replace(ANSI, '')].slice(0, max - 1).join('')}…`
}

/** Aligned columns separated by two spaces; numbers right-aligned when asked. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((r) => columns.map((col) => cut(cell(col.get(r), col.empty), col.max)))
  const widths = columns.map((col, i) => Math.max(width(col.header), ...cells.map((row) => width(row[i]!))))
  const line = (values: string[], style: (s: string, i: number) => string) =>
    values
      .map((v, i) => {
        const pad = ' '.repeat(widths[i]! - width(v))
        const styled = style(v, i)
        return columns[i]!.align === 'right' ? pad + styled : i === values.length - 1 ? styled : styled + pad
      })
      .join('  ')
      .trimEnd()
  return [
    line(columns.map((col) => col.header), (s) => c.bold(s)),
    ...cells.map((row, r) => line(row, (s, i) => columns[i]!.paint?.(s, rows[r]!) ?? s)),
  ].join('\n')
}

/** `key  value` lines with the keys aligned; a pair's third element colours the (safe) value. */
export function keyValues(pairs: readonly (readonly [string, unknown] | readonly [string, unknown, (text: string) => string])[]): string {
  const w = Math.max(...pairs.map(([k]) => width(k)))
  return pairs.map(([k, v, paint]) => `${c.dim(k.padEnd(w))}  ${paint ? paint(cell(v)) : cell(v)}`).join('\n')
}

/**
 * What an empty page says: `nothing` when there is nothing at all, else that the page is past
 * the end of what there is (`--page 99` of 49 items is not "none"): `on page 1` when that is
 * all, `on pages 1–N` otherwise.
 */
export function emptyPage(page: { page: number; limit: number; total: number; totalCapped: boolean }, nothing: string): string {
  const pages = Math.ceil(page.total / page.limit)
  // page 1 (or one inside the range) empty all the same: there is nothing to point to
  if (page.total === 0 || page.page <= pages) return nothing
  const more = page.totalCapped ? '+' : ''
  return `nothing on page ${page.page}: ${page.total}${more} in all, ${pages === 1 && !more ? 'on page 1' : `on pages 1–${pages}${more}`}`
}

/** Under a list that does not show everything: which page, how many of how many. */
export function pageNote(page: { page: number; items: readonly unknown[]; total: number; totalCapped: boolean }): string | undefined {
  if (page.total <= page.items.length || page.items.length === 0) return undefined
  return c.dim(`page ${page.page}, ${page.items.length} of ${page.total}${page.totalCapped ? '+' : ''}`)
}

/** "3m ago", "in 2h", "just now". */
export function relativeTime(iso: string | number | null | undefined, now = Date.now()): string {
  if (iso === null || iso === undefined) return '-'
  const t = typeof iso === 'number' ? iso : Date.parse(iso)
  if (Number.isNaN(t)) return String(iso)
  const diff = now - t
  const abs = Math.abs(diff)
  if (abs < 10_000) return 'just now'
  const units: [number, string][] = [
    [365 * 86_400_000, 'y'],
    [30 * 86_400_000, 'mo'],
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'm'],
    [1_000, 's'],
  ]
  const [size, unit] = units.find(([size]) => abs >= size)!
  const n = Math.floor(abs / size)
  return diff >= 0 ? `${n}${unit} ago` : `in ${n}${unit}`
}

/** Dollars: 4 decimals below $1, and an amount too small for them as `<$0.0001`, never as free. */
export function usd(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-'
  if (n > 0 && n < 0.00005) return '<$0.0001'
  return `$${n < 1 && n > 0 ? n.toFixed(4) : n.toFixed(2)}`
}
export const ms = (n: number | null | undefined) => (n === null || n === undefined ? '-' : `${Math.round(n)} ms`)
export const percent = (ratio: number) => `${(ratio * 100).toFixed(1)} %`

const BLOCKS = ['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█']

/** Horizontal bars, one line per label, scaled to the largest value. */
export function barChart(points: readonly { label: string; value: number; note?: string }[], barWidth = 40): string {
  const max = Math.max(0, ...points.map((p) => p.value))
  const labels = points.map((p) => safe(p.label))
  const labelWidth = Math.max(0, ...labels.map(width))
  return points
    .map((p, i) => {
      const eighths = max > 0 ? Math.round((p.value / max) * barWidth * 8) : 0
      const bar = '█'.repeat(Math.floor(eighths / 8)) + (eighths % 8 ? BLOCKS[(eighths % 8) - 1] : '')
      return `${labels[i]!.padEnd(labelWidth)} ${c.cyan(bar || (p.value > 0 ? '▏' : ''))} ${p.note ?? p.value}`.trimEnd()
    })
    .join('\n')
}

/** A spinner on stderr while `work` runs, only on a terminal (pipes and --json stay clean). */
export async function withSpinner<T>(text: string, work: () => Promise<T>, enabled = Boolean(process.stderr.isTTY)): Promise<T> {
  if (!enabled) return work()
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
  let i = 0
  const draw = () => process.stderr.write(`\r${frames[i++ % frames.length]} ${text}`)
  draw()
  const timer = setInterval(draw, 80)
  try {
    return await work()
  } finally {
    clearInterval(timer)
    process.stderr.write(`\r${' '.repeat(width(text) + 2)}\r`)
  }
}
