import { Args } from '@oclif/core'
import { usage } from './errors.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Ids are UUIDs: anything else is a usage error here rather than a 404 from the collector. The
 * message says so, because a shortened id (as a wide table might tempt one to copy) is not accepted.
 * `flag` names the flag the id came from, when it came from one.
 */
export function checkId(kind: string, id: string, flag?: string): string {
  if (UUID.test(id)) return id
  const article = /^[aeiou]/i.test(kind) ? 'an' : 'a'
  throw usage(`${flag ? `${flag}: ` : ''}not ${article} ${kind} id: "${id}" (ids are whole UUIDs, 36 characters)`)
}

export const idArg = (kind: string) => Args.string({ name: 'id', description: `${kind} id`, required: true })
