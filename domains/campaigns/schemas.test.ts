import { describe, expect, it } from 'vitest'
import { allowedFrom, canMove, TRANSITIONS } from './lifecycle.js'
import { CampaignStatus, Currency, Money } from './schemas.js'

describe('campaign money, currency and lifecycle rules', () => {
  it.each([
    ['1500', '1500.00'], ['1500.5', '1500.50'], [1500.5, '1500.50'], [0, '0.00'], ['0.10', '0.10'], [0.1, '0.10'], [' 42.00 ', '42.00'],
    ['999999999999.99', '999999999999.99'],
  ])('reads %j as the exact amount %s', (input, out) => {
    expect(Money.parse(input)).toBe(out)
  })

  it.each([['-1'], [-0.01], ['abc'], ['1,5'], ['1.005'], [10.125], [Number.NaN], [Infinity], ['1e12'], [''], ['0x10']])('refuses %j', (input) => {
    expect(Money.safeParse(input).success).toBe(false)
  })

  it('knows ISO 4217 codes from the runtime (any case in, upper case out) and refuses others', () => {
    expect(Currency.parse('brl')).toBe('BRL')
    for (const code of ['USD', 'EUR', 'JPY', 'MXN']) expect(Currency.parse(code)).toBe(code)
    for (const code of ['XYZ', 'ABC', 'BR', 'EURO']) expect(Currency.safeParse(code).success).toBe(false)
  })

  it('allows only the lifecycle moves, with archived final and no way back from completed', () => {
    expect(allowedFrom('archived')).toEqual([])
    expect(canMove('draft', 'scheduled') && canMove('scheduled', 'active') && canMove('active', 'paused') && canMove('paused', 'completed') && canMove('completed', 'archived')).toBe(true)
    expect(canMove('completed', 'active')).toBe(false)
    expect(canMove('active', 'draft')).toBe(false)
    expect(canMove('draft', 'completed')).toBe(false)
    // Every status is in the table and only moves to real statuses, never to itself.
    for (const s of CampaignStatus.options) {
      for (const to of TRANSITIONS[s]) {
        expect(CampaignStatus.options).toContain(to)
        expect(to).not.toBe(s)
      }
    }
  })
})
