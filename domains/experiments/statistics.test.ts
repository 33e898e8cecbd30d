import { describe, expect, it } from 'vitest'
import {
  chanceToBeatControl, chiSquareSurvival, normalCdf, sampleRatioMismatch, studentTCdf, studentTQuantile, twoProportionTest, welchTTest,
} from './statistics.js'

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

  // Welch's t-test. Reference values from SciPy 1.17.1: scipy.stats.ttest_ind(variant, control, equal_var=False) (t,
  // df, p-value and .confidence_interval(0.95) of the difference) on raw samples, ttest_ind_from_stats on summaries;
  // the relative interval by the delta-method formula with scipy.stats.t.ppf(0.975, df). The first two are R's own
  // example of ?t.test (`t.test(1:10, y = c(7:20))`: t = -5.4349, df = 21.982, p-value = 1.855e-05, 95% CI
  // -11.052802 -4.947198, and with 200 appended to y: t = -1.6329, df = 14.165, p = 0.1245), here as variant − control.
  const sample = (xs: number[]) => {
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length
    return { units: xs.length, mean, variance: xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1) }
  }
  const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i)
  it.each([
    // control, variant, t, df, p-value, difference CI low, high
    [sample(range(1, 10)), sample(range(7, 20)), 5.434930, 21.982212, 1.8552818e-05, 4.947198, 11.052802],
    [sample(range(1, 10)), sample([...range(7, 20), 200]), 1.632903, 14.164599, 0.12451350, -6.376233, 47.242900],
  ] as const)("Welch's t-test on R's t.test example %#", (control, variant, t, df, p, lo, hi) => {
    const r = welchTTest(control, variant)
    close(r.t, t)
    close(r.df, df)
    expect(r.pValue!).toBeCloseTo(p, 8)
    close(r.differenceCi95![0], lo)
    close(r.differenceCi95![1], hi)
  })

  it.each([
    // [nA, meanA, varA, nB, meanB, varB], t, df, p-value, diff CI low, high, relative uplift, relative CI low, high
    [[1000, 12.5, 900, 1000, 14.0, 1100], 1.06066, 1978.217822, 0.28897384, -1.273505, 4.273505, 0.12, -0.114237, 0.354237],
    [[5000, 3.2, 4.0, 5200, 3.3, 4.4], 2.464704, 10197.275793, 0.013729006, 0.020469, 0.179531, 0.03125, 0.006016, 0.056484],
    [[40, 100.0, 2500, 25, 80.0, 6400], -1.120664, 35.834847, 0.26988551, -56.200311, 16.200311, -0.2, -0.548982, 0.148982],
    [[12, 2.0, 1.5, 9, 2.9, 0.4], 2.186396, 17.219605, 0.042871252, 0.032366, 1.767634, 0.45, -0.134176, 1.034176],
    [[100000, 0.85, 2.25, 100000, 0.86, 2.3], 1.482499, 199973.851485, 0.13820924, -0.003221, 0.023221, 0.011765, -0.00388, 0.027409],
  ] as const)("Welch's t-test from summaries %j", ([nA, mA, vA, nB, mB, vB], t, df, p, lo, hi, rel, rlo, rhi) => {
    const r = welchTTest({ units: nA, mean: mA, variance: vA }, { units: nB, mean: mB, variance: vB })
    close(r.t, t)
    expect(r.df!).toBeCloseTo(df, 3)
    close(r.pValue, p)
    close(r.differenceCi95![0], lo)
    close(r.differenceCi95![1], hi)
    close(r.relativeUplift, rel)
    close(r.ci95![0], rlo)
    close(r.ci95![1], rhi)
  })

  it.each([
    // df, t.ppf(0.975, df), t.cdf(-2.1, df), t.cdf(0.7, df) (SciPy)
    [1, 12.706204736, 0.141463028, 0.694400112],
    [2.5, 3.574654842, 0.072251222, 0.728297528],
    [5, 2.570581836, 0.044876625, 0.742425526],
    [21.98, 2.073982483, 0.023714297, 0.754364739],
    [100, 1.983971519, 0.019122628, 0.757223697],
    [1e6, 1.959966357, 0.017864545, 0.758036266],
  ] as const)("has Student's t right with %d degrees of freedom", (df, q, cdfLow, cdfHigh) => {
    expect(studentTQuantile(0.975, df)).toBeCloseTo(q, 6)
    expect(studentTQuantile(0.025, df)).toBeCloseTo(-q, 6)
    expect(studentTCdf(-2.1, df)).toBeCloseTo(cdfLow, 8)
    expect(studentTCdf(0.7, df)).toBeCloseTo(cdfHigh, 8)
    expect(studentTCdf(0, df)).toBe(0.5)
  })

  it('has no t-test without two units in each variation or without any spread', () => {
    expect(welchTTest({ units: 1, mean: 3, variance: 0 }, { units: 10, mean: 4, variance: 1 })).toMatchObject({ pValue: null, ci95: null, differenceCi95: null, difference: 1 })
    expect(welchTTest({ units: 10, mean: 3, variance: 0 }, { units: 10, mean: 3, variance: 0 })).toMatchObject({ pValue: null, t: null })
    expect(welchTTest({ units: 10, mean: 0, variance: 1 }, { units: 10, mean: 1, variance: 1 })).toMatchObject({ relativeUplift: null, ci95: null })
    expect(welchTTest({ units: 10, mean: 0, variance: 1 }, { units: 10, mean: 1, variance: 1 }).pValue).toBeGreaterThan(0)
  })
})
