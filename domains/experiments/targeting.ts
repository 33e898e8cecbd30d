import type { Attributes, Condition } from './schemas.js'

type Value = Attributes[string] | undefined

/** `custom.<name>` reads the attribute sent as `custom.<name>` or as plain `<name>`. */
const read = (attributes: Attributes, name: string): Value =>
  name.startsWith('custom.') ? (attributes[name] ?? attributes[name.slice(7)]) : attributes[name]

const present = (v: Value): v is NonNullable<Value> => v !== undefined && v !== null
const same = (a: unknown, b: unknown) => a === b || (typeof a === 'string' && typeof b === 'string' && a.toLowerCase() === b.toLowerCase())

/** gt / lt: numbers by value (numeric strings too), other strings in code-unit order (ISO dates compare right). */
function compare(a: unknown, b: number | string): number | null {
  const x = typeof a === 'number' ? a : typeof a === 'string' && typeof b === 'number' && a.trim() !== '' ? Number(a) : a
  if (typeof x === 'number' && typeof b === 'number') return Number.isNaN(x) ? null : x - b
  if (typeof x === 'string' && typeof b === 'string') return x < b ? -1 : x > b ? 1 : 0
  return null
}

/**
 * Whether the attributes satisfy the condition tree. A list attribute (tags) matches `eq` when it contains the value
 * and `in` when it shares one; string equality ignores case (countries, sources arrive in either). A missing
 * attribute satisfies nothing but `exists: false`.
 */
export function matches(condition: Condition | null | undefined, attributes: Attributes): boolean {
  if (!condition) return true
  if ('and' in condition) return condition.and.every((c) => matches(c, attributes))
  if ('or' in condition) return condition.or.some((c) => matches(c, attributes))
  if ('not' in condition) return !matches(condition.not, attributes)
  const v = read(attributes, condition.attribute)
  switch (condition.op) {
    case 'exists': return present(v) === condition.value
    case 'eq': return present(v) && (Array.isArray(v) ? v.some((x) => same(x, condition.value)) : same(v, condition.value))
    case 'in': return present(v) && (Array.isArray(v) ? v : [v]).some((x) => condition.value.some((w) => same(x, w)))
    case 'gt':
    case 'lt': {
      if (!present(v) || Array.isArray(v)) return false
      const d = compare(v, condition.value)
      return d !== null && (condition.op === 'gt' ? d > 0 : d < 0)
    }
  }
}
