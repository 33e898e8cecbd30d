import { describe, expect, it } from 'vitest'
import { BENCHMARKS } from './benchmarks.js'
import { computeEstimates, MissingBenchmark, type PlanInput } from './estimates.js'

const plan = (over: Partial<PlanInput>): PlanInput => ({
  budget: '1000.00', currency: 'USD', niche: 'general', leadToSalePct: '10', revenuePerSale: '200.00', manualSplit: false, allocations: [], ...over,
})

describe('media plan estimates', () => {
  // Each row: one platform's inputs and the figures a person would compute by hand with the documented rounding.
  const rows: { name: string; input: PlanInput; expected: Record<string, string> }[] = [
    {
      name: 'a whole split with manual CPL, CTR and CPC',
      input: plan({ allocations: [{ platform: 'meta', percent: '100', cpl: '20', ctr: '1', cpc: '0.5' }] }),
      // 1000 / 0.5 = 2000 clicks; 2000 / 1% = 200000 impressions; 1000 / 20 = 50 leads; 5 sales; 1000.00 revenue.
      expected: { budget: '1000.00', clicks: '2000', impressions: '200000', leads: '50.00', sales: '5.00', revenue: '1000.00' },
    },
    {
      name: 'a third of the budget rounds half-even to cents (333.333… → 333.33)',
      input: plan({ allocations: [{ platform: 'google', percent: '33.3333', cpl: '7', ctr: '3', cpc: '1.3' }] }),
      // 1000 × 33.3333% = 333.333 → 333.33; 333.33 / 1.3 = 256.4… → 256 clicks; 256 / 3% = 8533.3 → 8533;
      // 333.33 / 7 = 47.6185… → 47.62 leads; 4.762 → 4.76 sales; 4.76 × 200 = 952.00.
      expected: { budget: '333.33', clicks: '256', impressions: '8533', leads: '47.62', sales: '4.76', revenue: '952.00' },
    },
    {
      name: 'half a cent goes to the even neighbour: 0.125 → 0.12 and 0.135 → 0.14',
      input: plan({ budget: '0.25', allocations: [{ platform: 'meta', percent: '50', cpl: '1', ctr: '1', cpc: '1' }] }),
      expected: { budget: '0.12', clicks: '0', impressions: '0', leads: '0.12', sales: '0.01', revenue: '2.00' },
    },
    {
      name: 'half a cent up to the even neighbour',
      input: plan({ budget: '0.27', allocations: [{ platform: 'meta', percent: '50', cpl: '1', ctr: '1', cpc: '1' }] }),
      expected: { budget: '0.14', leads: '0.14', sales: '0.01', revenue: '2.00' },
    },
    {
      name: 'leads kept with two decimals half-even (10 / 3 = 3.333… → 3.33; sales 0.333 → 0.33)',
      input: plan({ budget: '10.00', allocations: [{ platform: 'meta', percent: '100', cpl: '3', ctr: '2', cpc: '0.1' }] }),
      expected: { budget: '10.00', clicks: '100', impressions: '5000', leads: '3.33', sales: '0.33', revenue: '66.00' },
    },
    {
      name: 'revenue from the rounded sales, at a price with cents',
      input: plan({ budget: '100.00', leadToSalePct: '12.5', revenuePerSale: '19.99', allocations: [{ platform: 'meta', percent: '100', cpl: '8', ctr: '1', cpc: '1' }] }),
      // 12.5 leads → 1.5625 sales → 1.56; 1.56 × 19.99 = 31.1844 → 31.18.
      expected: { leads: '12.50', sales: '1.56', revenue: '31.18' },
    },
    {
      name: 'benchmarks of the niche when the allocation gives none',
      input: plan({ niche: 'health', allocations: [{ platform: 'meta', percent: '100' }] }),
      // health on meta: CPL 28, CTR 0.9, CPC 1.3. 1000 / 28 = 35.714… → 35.71 leads.
      expected: { cpl: '28', ctr: '0.9', cpc: '1.3', cplSource: 'benchmark', leads: '35.71', clicks: '769', impressions: '85444' },
    },
    {
      name: "the platform's general benchmark for a niche it has no row for",
      input: plan({ niche: 'automotive', allocations: [{ platform: 'tiktok', percent: '100' }] }),
      expected: { cpl: BENCHMARKS.tiktok.general.cpl.replace(/\.?0+$/, ''), cplSource: 'benchmark', leads: '40.00' },
    },
    {
      name: 'a manual split uses the amount and reports its share',
      input: plan({ manualSplit: true, allocations: [{ platform: 'linkedin', amount: '250.00', cpl: '100', ctr: '0.5', cpc: '5' }] }),
      expected: { percent: '25', budget: '250.00', clicks: '50', impressions: '10000', leads: '2.50', sales: '0.25', revenue: '50.00' },
    },
    {
      name: 'a zero budget estimates nothing',
      input: plan({ budget: '0', allocations: [{ platform: 'meta', percent: '100' }] }),
      expected: { budget: '0.00', clicks: '0', impressions: '0', leads: '0.00', sales: '0.00', revenue: '0.00' },
    },
  ]

  it.each(rows)('$name', ({ input, expected }) => {
    const [line] = computeEstimates(input).platforms
    expect(line).toMatchObject(expected)
  })

  it('sums the rounded lines into totals, with blended CPL, cost per sale, ROAS and what is left unallocated', () => {
    const e = computeEstimates(plan({
      allocations: [
        { platform: 'meta', percent: '33.3333', cpl: '10', ctr: '1', cpc: '1' },
        { platform: 'google', percent: '33.3333', cpl: '20', ctr: '5', cpc: '2' },
        { platform: 'whatsapp', percent: '33.3334', cpl: '5', ctr: '1', cpc: '1' },
      ],
    }))
    expect(e.platforms.map((p) => p.budget)).toEqual(['333.33', '333.33', '333.33'])
    expect(e.platforms.map((p) => p.leads)).toEqual(['33.33', '16.67', '66.67'])
    expect(e.totals).toEqual({
      budget: '999.99', unallocated: '0.01', clicks: String(333 + 166 + 333), impressions: String(33300 + 3320 + 33300),
      leads: '116.67', sales: '11.67', revenue: '2334.00', cpl: '8.57', costPerSale: '85.69', roas: '2.3340',
    })
    expect(e.warnings).toEqual([])
  })

  it('never loses a cent to floating point (0.1 + 0.2 budgets, many platforms)', () => {
    const e = computeEstimates(plan({
      budget: '0.30', manualSplit: true,
      allocations: [{ platform: 'meta', amount: '0.10', cpl: '0.1' }, { platform: 'google', amount: '0.20', cpl: '0.1' }].map((a) => ({ ...a, ctr: '1', cpc: '0.01' })),
    }))
    expect(e.totals).toMatchObject({ budget: '0.30', unallocated: '0.00', leads: '3.00' })
  })

  it('warns that benchmarks are USD figures when a plan in another currency uses them', () => {
    expect(computeEstimates(plan({ currency: 'BRL', allocations: [{ platform: 'meta', percent: '100' }] })).warnings[0]).toMatch(/USD figures applied as BRL/)
    expect(computeEstimates(plan({ currency: 'BRL', allocations: [{ platform: 'meta', percent: '100', cpl: '1', ctr: '1', cpc: '1' }] })).warnings).toEqual([])
  })

  it('reports null CPL, cost per sale and ROAS rather than dividing by zero', () => {
    expect(computeEstimates(plan({ budget: '0' })).totals).toMatchObject({ cpl: null, costPerSale: null, roas: null, leads: '0.00' })
  })

  it('refuses a platform without a benchmark unless it brings its own CPL, CTR and CPC', () => {
    expect(() => computeEstimates(plan({ allocations: [{ platform: 'snapchat', percent: '100', cpl: '5' }] }))).toThrow(MissingBenchmark)
    expect(computeEstimates(plan({ allocations: [{ platform: 'snapchat', percent: '100', cpl: '5', ctr: '1', cpc: '1' }] })).totals.leads).toBe('200.00')
  })
})
