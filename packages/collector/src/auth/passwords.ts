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

export const hashPassword = (password: string): Promise<string> => hash(password, ARGON2_OPTIONS)

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password, ARGON2_OPTIONS)
  } catch {
    return false
  }
}

let dummy: Promise<string> | undefined
/**
 * A hash of nothing anyone knows, made with the same parameters: a login for an unknown email
 * verifies against it, so it costs what a wrong password costs and reveals nothing by timing.
 */
export const dummyHash = (): Promise<string> => (dummy ??= hashPassword(`dummy-${Math.random()}-${Date.now()}`))
