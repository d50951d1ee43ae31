import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { CliError } from './errors.js'

/** What `llmguard` remembers between runs. Tokens are secrets: the file is 0600. */
export interface CliConfig {
  collector?: string
  email?: string
  userId?: string
  accessToken?: string
  refreshToken?: string
  /** Epoch ms: refresh a little before this instead of waiting for a 401. */
  accessTokenExpiresAt?: number
  /** The project commands use without `--project` (the one `init` chose). */
  projectId?: string
}

export const DEFAULT_COLLECTOR = 'http://localhost:3000'

/** `LLMGUARD_CONFIG_DIR`, else the platform's per-user config directory. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LLMGUARD_CONFIG_DIR) return env.LLMGUARD_CONFIG_DIR
  if (process.platform === 'win32' && env.APPDATA) return join(env.APPDATA, 'llmguard')
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Preferences', 'llmguard')
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'llmguard')
}

export const configPath = (env: NodeJS.ProcessEnv = process.env) => join(configDir(env), 'config.json')

export function readConfig(path = configPath()): CliConfig {
  if (!existsSync(path)) return {}
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as unknown
    return parsed && typeof parsed === 'object' ? (parsed as CliConfig) : {}
  } catch (err) {
    throw new CliError('CONFIG_INVALID', `cannot read ${path}: ${(err as Error).message} (fix or delete the file)`)
  }
}

/** Writes atomically (temp file + rename) with owner-only permissions, so no reader sees half a file or a token. */
export function writeConfig(config: CliConfig, path = configPath()): void {
  const dir = join(path, '..')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 })
  chmodSync(tmp, 0o600) // the mode of writeFileSync is masked by the umask
  renameSync(tmp, path)
}

export function updateConfig(change: (c: CliConfig) => CliConfig, path = configPath()): CliConfig {
  const next = change(readConfig(path))
  writeConfig(next, path)
  return next
}
