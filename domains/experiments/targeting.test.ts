import { describe, expect, it } from 'vitest'
import { Condition } from './schemas.js'
import { matches } from './targeting.js'

const lead = { country: 'BR', source: 'whatsapp', tags: ['vip', 'dental'], status: 'new', 'custom.visits': 3, plan: 'pro', signupDate: '2026-11-02' }

describe('targeting conditions', () => {
  it.each([
    [{ attribute: 'country', op: 'eq', value: 'BR' }, true],
    [{ attribute: 'country', op: 'eq', value: 'br' }, true],
    [{ attribute: 'country', op: 'eq', value: 'MX' }, false],
    [{ attribute: 'tags', op: 'eq', value: 'vip' }, true],
    [{ attribute: 'tags', op: 'eq', value: 'cold' }, false],
    [{ attribute: 'tags', op: 'in', value: ['cold', 'dental'] }, true],
    [{ attribute: 'source', op: 'in', value: ['web_form', 'api'] }, false],
    [{ attribute: 'custom.visits', op: 'gt', value: 2 }, true],
    [{ attribute: 'custom.visits', op: 'lt', value: 3 }, false],
    [{ attribute: 'custom.plan', op: 'eq', value: 'pro' }, true],
    [{ attribute: 'custom.signupDate', op: 'gt', value: '2026-11-01' }, true],
    [{ attribute: 'channel', op: 'exists', value: true }, false],
    [{ attribute: 'channel', op: 'exists', value: false }, true],
    [{ attribute: 'channel', op: 'eq', value: 'search' }, false],
    [{ attribute: 'channel', op: 'gt', value: 1 }, false],
    [{ and: [{ attribute: 'country', op: 'eq', value: 'BR' }, { attribute: 'status', op: 'eq', value: 'new' }] }, true],
    [{ and: [{ attribute: 'country', op: 'eq', value: 'BR' }, { attribute: 'status', op: 'eq', value: 'lost' }] }, false],
    [{ or: [{ attribute: 'country', op: 'eq', value: 'MX' }, { attribute: 'tags', op: 'eq', value: 'vip' }] }, true],
    [{ not: { attribute: 'country', op: 'in', value: ['MX', 'AR'] } }, true],
    [{ not: { or: [{ attribute: 'country', op: 'eq', value: 'BR' }] } }, false],
  ])('%j → %s', (condition, expected) => {
    expect(matches(Condition.parse(condition), lead)).toBe(expected)
  })

  it('lets everyone in without a condition', () => {
    expect(matches(null, {})).toBe(true)
  })

  it.each([
    [{ attribute: 'email', op: 'eq', value: 'x' }],
    [{ attribute: 'country', op: 'matches', value: 'B.*' }],
    [{ attribute: 'country', op: 'in', value: [] }],
    [{ and: [] }],
    [{ attribute: 'country', op: 'eq', value: 'BR', extra: 1 }],
  ])('refuses %j', (condition) => {
    expect(Condition.safeParse(condition).success).toBe(false)
  })
})
