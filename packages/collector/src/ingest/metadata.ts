import { llmRecordSchema } from '@llmguard/shared'
import { METADATA_PROTO_KEY, protoKeyProblems, refusingProtoKeys, type ProtoKeyProblem } from '../http/proto-keys.js'

/** Why a record's metadata cannot be stored as sent (a top-level key `__proto__`), or undefined. */
export function metadataProblem(record: unknown): ProtoKeyProblem | undefined {
  return protoKeyProblems(record, [METADATA_PROTO_KEY])[0]
}

/** The single-record route's body: llmRecordSchema, refusing what metadataProblem names. */
export const singleRecordSchema = refusingProtoKeys(llmRecordSchema, [METADATA_PROTO_KEY])
