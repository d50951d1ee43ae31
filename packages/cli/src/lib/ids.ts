import { Args } from '@oclif/core'
import { usage } from './errors.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Ids are UUIDs: anything else is a usage error here rather than a 404 from the collector. */
export function checkId(kind: string, id: string): string {
  if (!UUID.test(id)) throw usage(`not a ${kind} id: "${id}"`)
  return id
}

export const idArg = (kind: string) => Args.string({ name: 'id', description: `${kind} id`, required: true })
