import { z } from 'zod'

/** Every resource id is a UUID; anything else in a path is treated as "no such resource". */
export const idSchema = z.uuid()
export const isoDateSchema = z.iso.datetime({ offset: true })

export const MAX_PAGE_LIMIT = 100
export const DEFAULT_PAGE_LIMIT = 50
/** Totals are exact up to this count and then reported capped (counting more costs a scan). */
export const TOTAL_CAP = 10_000

/** Query-string integers arrive as strings; out-of-range values are errors, never clamped. */
const queryInt = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

export const paginationQuerySchema = z.object({
  page: queryInt(1, 1_000_000).default(1),
  limit: queryInt(1, MAX_PAGE_LIMIT).default(DEFAULT_PAGE_LIMIT),
})
export type PaginationQuery = z.infer<typeof paginationQuerySchema>

export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({
    items: z.array(item),
    page: z.number().int(),
    limit: z.number().int(),
    total: z.number().int(),
    totalCapped: z.boolean(),
  })
}
export interface Page<T> {
  items: T[]
  page: number
  limit: number
  total: number
  totalCapped: boolean
}

export const healthSchema = z.object({ status: z.literal('ok') })
export const readinessSchema = z.object({
  status: z.enum(['ready', 'not_ready']),
  database: z.enum(['up', 'down']),
  migrations: z.enum(['applied', 'pending']),
  version: z.string(),
})
export type Readiness = z.infer<typeof readinessSchema>
