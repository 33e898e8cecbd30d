import { describe, expect, it } from 'vitest'
import { type Filter, filterSchema, matchesFilters } from './filters.js'

const Filters = filterSchema(['event:name', 'visit:channel', 'event:form'], { properties: true })
interface E { name: string; channel: string | null; form?: string; props?: Record<string, string> }
const read = {
  fixed: { 'event:name': (e: E) => e.name, 'visit:channel': (e: E) => e.channel ?? '', 'event:form': (e: E) => e.form ?? '' },
  property: (e: E, key: string) => e.props?.[key] ?? '',
}
const lead: E = { name: 'lead.created', channel: 'search' }
const view: E = { name: 'form.viewed', channel: null, form: 'Spring-Promo', props: { plan: 'pro' } }

describe('filter grammar', () => {
  it.each<[string, Filter[], E, boolean]>([
    ['is: one of the values', [['is', 'event:name', ['form.viewed', 'lead.created']]], lead, true],
    ['is: none of them', [['is', 'event:name', ['form.viewed']]], lead, false],
    ['is_not', [['is_not', 'event:name', ['form.viewed']]], lead, true],
    ['is_not holds for an absent value', [['is_not', 'visit:channel', ['search']]], view, true],
    ['is with "" matches an absent value', [['is', 'visit:channel', ['']]], view, true],
    ['contains is case-sensitive by default', [['contains', 'event:form', ['promo']]], view, false],
    ['contains with case_sensitive: false', [['contains', 'event:form', ['promo'], { case_sensitive: false }]], view, true],
    ['contains_not', [['contains_not', 'event:name', ['lead.']]], view, true],
    ['a list is an and', [['is', 'event:name', ['lead.created']], ['is', 'visit:channel', ['social']]], lead, false],
    ['or', [['or', [['is', 'visit:channel', ['social']], ['is', 'event:name', ['lead.created']]]]], lead, true],
    ['and', [['and', [['is', 'visit:channel', ['search']], ['is', 'event:name', ['lead.created']]]]], lead, true],
    ['not', [['not', ['is', 'event:name', ['lead.created']]]], lead, false],
    ['no filters: everything', [], view, true],
    ['an event property by name', [['is', 'event:props:plan', ['pro']]], view, true],
    ['an absent event property is ""', [['is_not', 'event:props:plan', ['pro']]], lead, true],
  ])('%s', (_, filters, event, expected) => {
    expect(Filters.parse(filters)).toEqual(filters)
    expect(matchesFilters(event, filters, read)).toBe(expected)
  })

  it.each<[string, unknown, string, (string | number)[]]>([
    ['an unknown dimension, naming it and the valid ones', [['is', 'visit:planet', ['x']]], 'unknown dimension "visit:planet"; valid dimensions: event:name, visit:channel, event:form, event:props:<key>', [0, 1]],
    ['an unknown dimension deep inside', [['or', [['not', ['is', 'lead:planet', ['x']]]]]], 'unknown dimension "lead:planet"', [0, 1, 0, 1, 1]],
    ['a property name with spaces', [['is', 'event:props:my plan', ['x']]], 'unknown dimension "event:props:my plan"', [0, 1]],
    ['an unknown operator', [['matches', 'event:name', ['x']]], 'unknown operator "matches"; valid operators: is, is_not, contains, contains_not, and, or, not', [0]],
    ['a filter that is not a list', [{ is: 'event:name' }], 'a filter is a list', [0]],
    ['no values', [['is', 'event:name', []]], '', [0, 2]],
    ['a value that is not a string', [['is', 'event:name', [3]]], '', [0, 2, 0]],
    ['an unknown modifier', [['is', 'event:name', ['x'], { regex: true }]], '', [0, 3]],
    ['an empty or', [['or', []]], '', [0, 1]],
  ])('refuses %s', (_, filters, message, path) => {
    const result = Filters.safeParse(filters)
    expect(result.success).toBe(false)
    const issue = result.error!.issues[0]!
    expect(issue.path).toEqual(path)
    expect(issue.message).toContain(message)
  })

  it('refuses nesting deeper than 8', () => {
    const nest = (depth: number): unknown => (depth === 1 ? ['is', 'event:name', ['x']] : ['not', nest(depth - 1)])
    expect(Filters.safeParse([nest(8)]).success).toBe(true)
    const deep = Filters.safeParse([nest(9)])
    expect(deep.success).toBe(false)
    expect(deep.error!.issues[0]!.message).toContain('nest at most 8 deep')
  })
})
