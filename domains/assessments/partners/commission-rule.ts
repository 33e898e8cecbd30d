import { Decimal } from 'decimal.js'
import type { PartnerTier } from './schemas.js'

/**
 * The commission rule, in one place (README "Assessments", commissions):
 *
 *   base rate   = the product's commission_rate when it has one, else the partner's commission_rate
 *   rate        = min(base rate × tier multiplier, 1), to 4 decimals (half up)
 *   amount      = purchase amount × rate, to cents (half up)
 *
 * Tier multipliers: standard 1.00, silver 1.10, gold 1.25, platinum 1.50. The rate is capped at 100 % so no tier can
 * pay more than the sale. Every input and the result are exact decimals (decimal.js, strings in and out); the parts
 * are stored with the commission, so a later change of a rate or tier never rewrites what was earned.
 */
export const TIER_MULTIPLIERS: Readonly<Record<PartnerTier, string>> = {
  standard: '1.00',
  silver: '1.10',
  gold: '1.25',
  platinum: '1.50',
}

export interface CommissionInput {
  /** The purchase's amount (decimal string). */
  amount: string
  productRate: string | null
  partnerRate: string
  tier: PartnerTier
}

export interface CommissionParts {
  baseAmount: string
  baseRate: string
  rateSource: 'product' | 'partner'
  tier: PartnerTier
  tierMultiplier: string
  rate: string
  amount: string
}

const D = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP })

export function computeCommission(input: CommissionInput): CommissionParts {
  const rateSource = input.productRate !== null ? 'product' : 'partner'
  const baseRate = new D(input.productRate ?? input.partnerRate)
  const multiplier = new D(TIER_MULTIPLIERS[input.tier])
  const rate = D.min(baseRate.times(multiplier), 1).toDecimalPlaces(4)
  const base = new D(input.amount)
  return {
    baseAmount: base.toFixed(2),
    baseRate: baseRate.toFixed(4),
    rateSource,
    tier: input.tier,
    tierMultiplier: multiplier.toFixed(2),
    rate: rate.toFixed(4),
    amount: base.times(rate).toDecimalPlaces(2).toFixed(2),
  }
}

/** price × quantity, exactly. */
export const lineAmount = (price: string, quantity: number): string => new D(price).times(quantity).toFixed(2)

export const isPositive = (amount: string): boolean => new D(amount).gt(0)
export const minAmount = (a: string, b: string): string => D.min(a, b).toFixed(2)
export const subtract = (a: string, b: string): string => new D(a).minus(b).toFixed(2)
