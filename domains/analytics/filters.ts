import { z } from 'zod'

/**
 * The filter grammar of the analytics API, Plausible Stats API v2's: a list of filters, all of which must hold.
 *
 *   ["is" | "is_not" | "contains" | "contains_not", dimension, [value, …], { case_sensitive?: boolean }?]
 *   ["and" | "or", [filter, …]]      ["not", filter]
 *
 * `is` holds when the event's value is one of the values; `contains` when it contains one of them (case-sensitive
 * unless `case_sensitive: false`); the `_not` forms are their negation. An event without the dimension has the value
 * '' (as in the rollups), so `is_not` holds for it and `is` only with ''.
 *
 * One grammar for the query API, funnels and the live feed: `filterTree` is the zod schema of one filter, used by all
 * three; `filterSchema(dimensions)` a list of them over a fixed set of dimensions (the live feed's), so an unknown
 * dimension is a 400 naming it and listing the valid ones. `matchesFilters` evaluates filters against one event in
 * memory (the live feed); the query API compiles the same tree to SQL (query/queries.ts filterSql) with the same
 * semantics, which filters.int.test.ts checks on the same events both ways.
 */

export const FILTER_OPERATORS = ['is', 'is_not', 'contains', 'contains_not'] as const
export type FilterOperator = (typeof FILTER_OPERATORS)[number]

export interface FilterModifiers { case_sensitive?: boolean }
export type Filter<D extends string = string> =
  | [FilterOperator, D, string[]]
  | [FilterOperator, D, string[], FilterModifiers]
  | ['and' | 'or', Filter<D>[]]
  | ['not', Filter<D>]

/** Nesting beyond this is refused: a filter is written by a person or a page, never thousands deep. */
export const MAX_FILTER_DEPTH = 8
const MAX_VALUES = 100
const MAX_CHILDREN = 50
/** Longer values can never match a rolled-up dimension (the rollups keep 200 characters) but may match a property. */
const MAX_VALUE_LENGTH = 500

/** `event:props:<key>`: any event property by name (the query API's custom-property dimension). */
export const PROPERTY_DIMENSION = /^event:props:([A-Za-z0-9_.-]{1,64})$/

/**
 * One filter (a leaf, `and`/`or`, `not`) whose dimensions `Dimension` accepts. The query API and funnels pass a
 * plain string and check names later against their own catalog (time dimensions have their own message there); the
 * live feed passes its fixed list through `filterSchema`.
 */
export function filterTree(Dimension: z.ZodType<string>): z.ZodType<Filter> {
  const Values = z.array(z.string().max(MAX_VALUE_LENGTH)).min(1).max(MAX_VALUES)
  const Modifiers = z.object({ case_sensitive: z.boolean().optional() }).strict()
  const Leaf = z.union([z.tuple([z.enum(FILTER_OPERATORS), Dimension, Values]), z.tuple([z.enum(FILTER_OPERATORS), Dimension, Values, Modifiers])])
  const operators = [...FILTER_OPERATORS, 'and', 'or', 'not'].join(', ')
  // Dispatched on the operator, so that an error names what is wrong (the dimension, a value) rather than "matches
  // no alternative".
  const node = (depth: number): z.ZodType<Filter> => z.unknown().transform((value, ctx): Filter => {
    const op = Array.isArray(value) ? value[0] : undefined
    const schema: z.ZodType | null =
      op === 'and' || op === 'or' ? z.tuple([z.enum(['and', 'or']), z.array(child(depth)).min(1).max(MAX_CHILDREN)])
        : op === 'not' ? z.tuple([z.literal('not'), child(depth)])
          : (FILTER_OPERATORS as readonly unknown[]).includes(op) ? (Array.isArray(value) && value.length === 4 ? Leaf.options[1] : Leaf.options[0])
            : null
    if (!schema) {
      ctx.addIssue({
        code: 'custom',
        message: Array.isArray(value) ? `unknown operator ${JSON.stringify(op)}; valid operators: ${operators}` : 'a filter is a list: [operator, dimension, values], ["and"|"or", filters] or ["not", filter]',
      })
      return z.NEVER
    }
    const parsed = schema.safeParse(value)
    if (!parsed.success) {
      for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path })
      return z.NEVER
    }
    return parsed.data as Filter
  }) as unknown as z.ZodType<Filter>
  const child = (depth: number): z.ZodType<Filter> => depth >= MAX_FILTER_DEPTH
    ? z.never({ error: `filters nest at most ${MAX_FILTER_DEPTH} deep` }) as unknown as z.ZodType<Filter>
    : z.lazy(() => node(depth + 1))
  return node(1)
}

/** A list of filters ("all of") over a fixed set of dimensions: an unknown one is named with the valid ones. */
export function filterSchema(dimensions: readonly [string, ...string[]], options: { properties?: boolean; max?: number } = {}) {
  const valid = [...dimensions, ...(options.properties ? ['event:props:<key>'] : [])].join(', ')
  const known = new Set<string>(dimensions)
  const Dimension = z.string().refine((d) => known.has(d) || (options.properties === true && PROPERTY_DIMENSION.test(d)),
    { error: (issue) => `unknown dimension ${JSON.stringify(issue.input)}; valid dimensions: ${valid}` })
  return z.array(filterTree(Dimension)).max(options.max ?? MAX_CHILDREN)
}

/** Reads a dimension's value of one event ('' when the event has none). */
export type DimensionReader<E> = (event: E) => string
/** The reader of each dimension: a fixed table, and for `event:props:<key>` the event's property `key`. */
export interface DimensionReaders<E> {
  fixed: Record<string, DimensionReader<E>>
  property?: (event: E, key: string) => string
}

export function matchesFilters<E>(event: E, filters: readonly Filter[], read: DimensionReaders<E>): boolean {
  return filters.every((f) => matches(event, f, read))
}

function readerOf<E>(read: DimensionReaders<E>, dimension: string): DimensionReader<E> {
  const fixed = read.fixed[dimension]
  if (fixed) return fixed
  const key = PROPERTY_DIMENSION.exec(dimension)?.[1]
  if (key !== undefined && read.property) return (e) => read.property!(e, key)
  throw new Error(`no reader for dimension ${dimension}`)
}

function matches<E>(event: E, filter: Filter, read: DimensionReaders<E>): boolean {
  switch (filter[0]) {
    case 'and': return filter[1].every((f) => matches(event, f, read))
    case 'or': return filter[1].some((f) => matches(event, f, read))
    case 'not': return !matches(event, filter[1], read)
    default: {
      const [op, dimension, values, modifiers] = filter
      const reader = readerOf(read, dimension)
      const caseSensitive = modifiers?.case_sensitive ?? true
      const fold = (s: string) => (caseSensitive ? s : s.toLowerCase())
      const value = fold(reader(event))
      const hit = op === 'is' || op === 'is_not'
        ? values.some((v) => fold(v) === value)
        : values.some((v) => value.includes(fold(v)))
      return op === 'is' || op === 'contains' ? hit : !hit
    }
  }
}
