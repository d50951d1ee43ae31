import { hash, verify, type Options } from '@node-rs/argon2'

/**
 * argon2id at the OWASP minimum (m=19456 KiB, t=2, p=1), set explicitly so a library default
 * changing cannot weaken it. `algorithm: 2` is Algorithm.Argon2id: the library's enum is an
 * ambient const enum, which isolatedModules cannot import.
 */
export const ARGON2_OPTIONS: Options = {
  algorithm: 2 as Options['algorithm'],
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
}

/**
 * One spelling per password: the same typed text arrives composed (é) from one keyboard and
 * decomposed (e + ◌́) from another, macOS's input often giving the second. NFKC, as NIST SP
 * 800-63B asks, before hashing and before verifying.
 */
const normalized = (password: string): string => password.normalize('NFKC')

export const hashPassword = (password: string): Promise<string> => hash(normalized(password), ARGON2_OPTIONS)

async function matches(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password, ARGON2_OPTIONS)
  } catch {
    return false
  }
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  const nfkc = normalized(password)
  if (await matches(stored, nfkc)) return true
  // a hash made before passwords were normalized holds the text as it was typed then
  return nfkc !== password && matches(stored, password)
}

let dummy: Promise<string> | undefined
/**
 * A hash of nothing anyone knows, made with the same parameters: a login for an unknown email
 * verifies against it, so it costs what a wrong password costs and reveals nothing by timing.
 */
export const dummyHash = (): Promise<string> => (dummy ??= hashPassword(`dummy-${Math.random()}-${Date.now()}`))
