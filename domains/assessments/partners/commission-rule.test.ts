import { describe, expect, it } from 'vitest'
import { computeCommission, lineAmount } from './commission-rule.js'

describe('the commission rule', () => {
  it.each([
    // amount, product rate, partner rate, tier → rate source, rate, amount
    ['100.00', null, '0.1000', 'standard', 'partner', '0.1000', '10.00'],
    ['100.00', '0.2000', '0.1000', 'standard', 'product', '0.2000', '20.00'],
    ['100.00', '0', '0.1000', 'gold', 'product', '0.0000', '0.00'],
    ['100.00', null, '0.1000', 'silver', 'partner', '0.1100', '11.00'],
    ['100.00', null, '0.1000', 'gold', 'partner', '0.1250', '12.50'],
    ['100.00', null, '0.1000', 'platinum', 'partner', '0.1500', '15.00'],
    // 0.0333 × 1.10 = 0.03663 → 0.0366 (4 decimals, half up); 19.99 × 0.0366 = 0.731634 → 0.73
    ['19.99', '0.0333', '0.5000', 'silver', 'product', '0.0366', '0.73'],
    // half up at the cent: 0.05 × 0.1 = 0.005 → 0.01
    ['0.05', null, '0.1000', 'standard', 'partner', '0.1000', '0.01'],
    // the cap: 0.8 × 1.5 = 1.2 → 1
    ['250.00', '0.8000', '0.1000', 'platinum', 'product', '1.0000', '250.00'],
    // no float drift on large amounts: 999999999999.99 × 0.1 = 99999999999.999 → 100000000000.00
    ['999999999999.99', null, '0.1000', 'standard', 'partner', '0.1000', '100000000000.00'],
    ['0.10', null, '0.3000', 'standard', 'partner', '0.3000', '0.03'],
  ] as const)('%s at product %s / partner %s, %s tier → %s rate %s = %s', (amount, productRate, partnerRate, tier, source, rate, expected) => {
    const parts = computeCommission({ amount, productRate, partnerRate, tier })
    expect(parts).toMatchObject({ rateSource: source, rate, amount: expected, baseAmount: amount })
  })

  it('multiplies price by quantity exactly', () => {
    expect(lineAmount('0.10', 3)).toBe('0.30')
    expect(lineAmount('19.99', 7)).toBe('139.93')
  })
})
