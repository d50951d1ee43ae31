import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'

/** Quotes a value only when a dotenv parser would otherwise misread it. */
const quote = (v: string) => (/^[\w@%+=:,./-]*$/.test(v) ? v : JSON.stringify(v))

/**
 * Sets variables in a .env file: an existing `NAME=` line is replaced in place (also
 * `export NAME=`), new ones are appended, every other line — comments included — is kept.
 */
export function upsertEnv(path: string, values: Record<string, string>): { added: string[]; updated: string[] } {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : ''
  const lines = text.length ? text.replace(/\r?\n$/, '').split(/\r?\n/) : []
  const added: string[] = []
  const updated: string[] = []
  for (const [name, value] of Object.entries(values)) {
    const pattern = new RegExp(`^\\s*(export\\s+)?${name}\\s*=`)
    const i = lines.findIndex((l) => pattern.test(l))
    const line = `${name}=${quote(value)}`
    if (i === -1) {
      lines.push(line)
      added.push(name)
    } else {
      lines[i] = (/^\s*export\s/.test(lines[i]!) ? 'export ' : '') + line
      updated.push(name)
    }
  }
  const existed = existsSync(path)
  writeFileSync(path, `${lines.join('\n')}\n`, existed ? undefined : { mode: 0o600 })
  // a new .env holds an API key: keep it to its owner
  if (!existed) chmodSync(path, 0o600)
  return { added, updated }
}
