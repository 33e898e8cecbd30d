import { describe, expect, it } from 'vitest'
import { chanceToBeatControl, chiSquareSurvival, normalCdf, sampleRatioMismatch, twoProportionTest } from './statistics.js'

/**
 * Reference values computed independently in Python with SciPy 1.17.1 (not with this code), to 4 decimal places:
 * - p-values: 2 · scipy.stats.norm.sf(|z|) for the pooled z of the two proportions;
 * - the relative uplift's 95% interval: the delta-method formula (statistics.ts) with z = scipy.stats.norm.ppf(0.975);
 * - chance to beat control: ∫ f_B(x) F_A(x) dx of the two Beta posteriors by scipy.integrate.quad (numerical
 *   integration, not Evan Miller's closed form that statistics.ts uses), scipy.stats.beta(1 + x, 1 + n − x);
 * - SRM: scipy.stats.chisquare(observed, expected = n · weights) statistic and p-value.
 */
const close = (actual: number | null | undefined, expected: number) => expect(actual!).toBeCloseTo(expected, 4)

describe('experiment statistics against SciPy reference values', () => {
  it.each([
    // [nA, xA, nB, xB], p-value, relative uplift, ci low, ci high, chance to beat control
    [[1000, 100, 1000, 120], 0.152918, 0.2, -0.100585, 0.500585, 0.923183],
    [[5000, 250, 5000, 300], 0.028295, 0.2, 0.00416, 0.39584, 0.985825],
    [[200, 30, 210, 25], 0.357985, -0.206349, -0.59855, 0.185852, 0.180253],
    [[10000, 1200, 10050, 1310], 0.026836, 0.086235, 0.006656, 0.165815, 0.986576],
    [[50, 5, 48, 9], 0.215925, 0.875, -1.035533, 2.785533, 0.886012],
  ] as const)('two proportions %j', ([nA, xA, nB, xB], p, rel, lo, hi, ctb) => {
    const r = twoProportionTest({ units: nA, conversions: xA }, { units: nB, conversions: xB })
    close(r.pValue, p)
    close(r.relativeUplift, rel)
    close(r.ci95![0], lo)
    close(r.ci95![1], hi)
    close(chanceToBeatControl({ units: nA, conversions: xA }, { units: nB, conversions: xB }), ctb)
  })

  it.each([
    [[5000, 5100], [0.5, 0.5], 0.990099, 0.31971818, false],
    [[4800, 5200], [0.5, 0.5], 16, 0.00006334, true],
    [[1900, 3100, 5000], [0.2, 0.3, 0.5], 8.333333, 0.01550385, false],
    [[2100, 2900, 5000], [0.2, 0.3, 0.5], 8.333333, 0.01550385, false],
    [[10, 3], [0.5, 0.5], 3.769231, 0.05220364, false],
  ] as const)('sample-ratio mismatch of %j against %j', (observed, weights, chi2, p, flagged) => {
    const r = sampleRatioMismatch(observed, weights)
    close(r.chiSquare, chi2)
    close(r.pValue, p)
    expect(r.flagged).toBe(flagged)
  })

  it('does not flag a mismatch with fewer than 8 units in a variation, however skewed', () => {
    expect(sampleRatioMismatch([200, 7], [0.5, 0.5])).toMatchObject({ flagged: false })
    expect(sampleRatioMismatch([200, 7], [0.5, 0.5]).pValue).toBeLessThan(0.001)
  })

  it('has the special functions right at known points', () => {
    close(normalCdf(1.959963984540054), 0.975)
    close(normalCdf(0), 0.5)
    close(chiSquareSurvival(3.841458820694124, 1), 0.05)
    close(chiSquareSurvival(5.991464547107979, 2), 0.05)
    close(chiSquareSurvival(0.5, 4), 0.9735009788)
  })

  it('answers nothing it cannot know: no units, or a control that converted nobody', () => {
    expect(twoProportionTest({ units: 0, conversions: 0 }, { units: 10, conversions: 1 })).toMatchObject({ relativeUplift: null, ci95: null, pValue: null })
    expect(twoProportionTest({ units: 10, conversions: 0 }, { units: 10, conversions: 1 })).toMatchObject({ relativeUplift: null, ci95: null })
    close(chanceToBeatControl({ units: 0, conversions: 0 }, { units: 0, conversions: 0 }), 0.5)
  })
})
