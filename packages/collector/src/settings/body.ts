import { projectSettingsPatchSchema } from '@llmguard/shared'
import { METADATA_PROTO_KEY, refusingProtoKeys } from '../http/proto-keys.js'

/**
 * The project settings PATCH body: projectSettingsPatchSchema, refusing a key `__proto__` in
 * its maps (http/proto-keys.ts), as ingest refuses it in a record's metadata. The maps' values
 * are strict objects (a 400 already).
 */
export const projectSettingsBodySchema = refusingProtoKeys(projectSettingsPatchSchema, [
  METADATA_PROTO_KEY,
  { field: 'priceOverrides', message: 'a model named "__proto__" cannot be priced' },
  { field: 'autoRemediation', message: '"__proto__" is not an incident type' },
])
