import { Decimal } from 'decimal.js'
import { BENCHMARK_CURRENCY, benchmarkFor } from './benchmarks.js'

/**
 * A media plan's estimates, computed from its inputs with exact decimals (decimal.js: no float touches money).
 *
 * The model, per platform:
 *   budget      = plan budget × percent / 100                    (manual split: the allocation's own amount)
 *   clicks      = budget / CPC
 *   impressions = clicks / (CTR / 100)                          (the CTR/CPC model; the implied CPM = CPC × CTR × 10)
 *   leads       = budget / CPL
 *   sales       = leads × lead-to-sale % / 100
 *   revenue     = sales × revenue per sale
 * CPL, CTR and CPC are the allocation's own when given, else the benchmark for the platform and the plan's niche
 * (benchmarks.ts); each figure says which (`source`).
 *
 * Rounding, one rule for everyone: money (budget, revenue, CPL, cost per sale) is rounded half-even (banker's) to
 * cents; leads and sales are expected values, kept with two decimals, also half-even; clicks and impressions are
 * whole numbers, floored (an impression is not bought in halves). Each figure is computed from the previous figure as
 * rounded, so anyone can recompute a line from what they see. Totals are sums of the rounded lines; the blended CPL is
 * total budget / total leads, and `unallocated` is the plan budget minus the platforms' budgets (rounding cents, or
 * what a manual split leaves unspent).
 */

const HALF_EVEN = Decimal.ROUND_HALF_EVEN
const money = (d: Decimal) => d.toDecimalPlaces(2, HALF_EVEN)
const twoPlaces = (d: Decimal) => d.toDecimalPlaces(2, HALF_EVEN)
const whole = (d: Decimal) => d.toDecimalPlaces(0, Decimal.ROUND_FLOOR)
const fixed2 = (d: Decimal) => d.toFixed(2)

export interface AllocationInput {
  platform: string
  /** Share of the plan budget in percent (split by percentage). */
  percent?: string | null
  /** Money for this platform (manual split). */
  amount?: string | null
  cpl?: string | null
  ctr?: string | null
  cpc?: string | null
}

export interface PlanInput {
  budget: string
  currency: string
  niche: string
  leadToSalePct: string
  revenuePerSale: string
  manualSplit: boolean
  allocations: readonly AllocationInput[]
}

export type Source = 'manual' | 'benchmark'

export interface PlatformEstimate {
  platform: string
  percent: string
  budget: string
  cpl: string; cplSource: Source
  ctr: string; ctrSource: Source
  cpc: string; cpcSource: Source
  clicks: string
  impressions: string
  leads: string
  sales: string
  revenue: string
}

export interface PlanEstimates {
  currency: string
  platforms: PlatformEstimate[]
  totals: {
    budget: string; unallocated: string; clicks: string; impressions: string; leads: string; sales: string; revenue: string
    /** Blended cost per lead (null without leads). */
    cpl: string | null
    /** Cost per sale (null without sales). */
    costPerSale: string | null
    /** Revenue / budget, four decimals (null for a zero budget). */
    roas: string | null
  }
  warnings: string[]
}

/** Thrown for an allocation on a platform without a benchmark and without its own CPL, CTR and CPC. */
export class MissingBenchmark extends Error {
  constructor(readonly platform: string, readonly field: 'cpl' | 'ctr' | 'cpc') {
    super(`platform ${platform} has no benchmark: give its ${field}`)
  }
}

export function computeEstimates(plan: PlanInput): PlanEstimates {
  const budget = new Decimal(plan.budget)
  const pct = new Decimal(plan.leadToSalePct)
  const rps = new Decimal(plan.revenuePerSale)
  const warnings: string[] = []
  let usedBenchmark = false

  const platforms = plan.allocations.map((a): PlatformEstimate => {
    const bench = benchmarkFor(a.platform, plan.niche)
    const pick = (field: 'cpl' | 'ctr' | 'cpc'): [Decimal, Source] => {
      const own = a[field]
      if (own !== undefined && own !== null) return [new Decimal(own), 'manual']
      if (!bench) throw new MissingBenchmark(a.platform, field)
      usedBenchmark = true
      return [new Decimal(bench[field]), 'benchmark']
    }
    const [cpl, cplSource] = pick('cpl')
    const [ctr, ctrSource] = pick('ctr')
    const [cpc, cpcSource] = pick('cpc')

    const platformBudget = plan.manualSplit
      ? money(new Decimal(a.amount ?? 0))
      : money(budget.times(a.percent ?? 0).div(100))
    const percent = plan.manualSplit
      ? (budget.isZero() ? new Decimal(0) : platformBudget.div(budget).times(100).toDecimalPlaces(4, HALF_EVEN))
      : new Decimal(a.percent ?? 0)
    const clicks = whole(platformBudget.div(cpc))
    const impressions = ctr.isZero() ? new Decimal(0) : whole(clicks.div(ctr.div(100)))
    const leads = twoPlaces(platformBudget.div(cpl))
    const sales = twoPlaces(leads.times(pct).div(100))
    const revenue = money(sales.times(rps))
    return {
      platform: a.platform, percent: percent.toString(), budget: fixed2(platformBudget),
      cpl: cpl.toString(), cplSource, ctr: ctr.toString(), ctrSource, cpc: cpc.toString(), cpcSource,
      clicks: clicks.toFixed(0), impressions: impressions.toFixed(0), leads: fixed2(leads), sales: fixed2(sales), revenue: fixed2(revenue),
    }
  })

  const sum = (key: 'budget' | 'clicks' | 'impressions' | 'leads' | 'sales' | 'revenue') =>
    platforms.reduce((s, p) => s.plus(p[key]), new Decimal(0))
  const totalBudget = sum('budget')
  const leads = sum('leads')
  const sales = sum('sales')
  const revenue = sum('revenue')
  if (usedBenchmark && plan.currency !== BENCHMARK_CURRENCY) {
    warnings.push(`benchmark CPL, CTR and CPC are ${BENCHMARK_CURRENCY} figures applied as ${plan.currency}: give each platform its own cpl for a better estimate`)
  }
  if (totalBudget.gt(budget)) warnings.push('the platforms are allocated more than the plan budget')
  return {
    currency: plan.currency,
    platforms,
    totals: {
      budget: fixed2(totalBudget),
      unallocated: fixed2(budget.minus(totalBudget)),
      clicks: sum('clicks').toFixed(0),
      impressions: sum('impressions').toFixed(0),
      leads: fixed2(leads),
      sales: fixed2(sales),
      revenue: fixed2(revenue),
      cpl: leads.isZero() ? null : fixed2(money(totalBudget.div(leads))),
      costPerSale: sales.isZero() ? null : fixed2(money(totalBudget.div(sales))),
      roas: totalBudget.isZero() ? null : revenue.div(totalBudget).toDecimalPlaces(4, HALF_EVEN).toFixed(4),
    },
    warnings,
  }
}
