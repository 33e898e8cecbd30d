/**
 * The statistics of experiment results, pure. References for each (and the reference values statistics.test.ts holds
 * them to, computed independently with SciPy 1.17: see the test):
 * - Two-proportion test (frequentist): pooled z-test for the difference of conversion rates, two-sided p-value; the
 *   relative uplift (pB − pA) / pA with a 95% interval by the delta method (var ≈ vB/pA² + pB²·vA/pA⁴, v = p(1−p)/n),
 *   as GrowthBook's frequentist engine reports relative effects (gbstats, "frequentist/tests.py").
 * - Chance to beat control (Bayesian, Beta-Binomial): P(pB > pA) for posteriors Beta(1 + x, 1 + n − x) under a uniform
 *   prior, by Evan Miller's closed form ("Formulas for Bayesian A/B Testing", 2015), exact for integer parameters.
 * - Sample-ratio mismatch: Pearson's chi-square of the units per variation against the configured weights, k − 1
 *   degrees of freedom; flagged when p < 0.001 with at least 8 units in every variation (GrowthBook's SRM check).
 * Special functions: the normal CDF by W. J. Cody's rational erfc approximations (via the complementary error function
 * of Numerical Recipes 3rd ed. §6.2, erfc with Chebyshev coefficients, |error| < 1.2e-7 relative), the regularized
 * upper incomplete gamma Q(a, x) by its series and continued fraction (Numerical Recipes §6.2), log Γ by Lanczos (g = 7).
 */

const LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7]

export function logGamma(z: number): number {
  if (z < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * z))) - logGamma(1 - z)
  const x = z - 1
  let a = LANCZOS[0]!
  const t = x + 7.5
  for (let i = 1; i < 9; i++) a += LANCZOS[i]! / (x + i)
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a)
}

const logBeta = (a: number, b: number) => logGamma(a) + logGamma(b) - logGamma(a + b)

/** erfc(x), Numerical Recipes' Chebyshev fit (fractional error below 1.2e-7 everywhere). */
function erfc(x: number): number {
  const z = Math.abs(x)
  const t = 1 / (1 + 0.5 * z)
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
  return x >= 0 ? r : 2 - r
}

export const normalCdf = (z: number) => 0.5 * erfc(-z / Math.SQRT2)

/** The regularized upper incomplete gamma Q(a, x) = Γ(a, x) / Γ(a). */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1
  const lg = logGamma(a)
  if (x < a + 1) {
    // Series for P(a, x), then Q = 1 − P.
    let sum = 1 / a
    let term = sum
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n)
      sum += term
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break
    }
    return 1 - sum * Math.exp(-x + a * Math.log(x) - lg)
  }
  // Continued fraction (modified Lentz).
  let b = x + 1 - a
  let c = 1 / 1e-300
  let d = 1 / b
  let h = d
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a)
    b += 2
    d = an * d + b
    if (Math.abs(d) < 1e-300) d = 1e-300
    c = b + an / c
    if (Math.abs(c) < 1e-300) c = 1e-300
    d = 1 / d
    const delta = d * c
    h *= delta
    if (Math.abs(delta - 1) < 1e-15) break
  }
  return Math.exp(-x + a * Math.log(x) - lg) * h
}

/** P(X > chi2) for X ~ χ²(df). */
export const chiSquareSurvival = (chi2: number, df: number) => gammaQ(df / 2, chi2 / 2)

export interface Proportion { units: number; conversions: number }

export interface TwoProportionResult {
  controlRate: number
  rate: number
  /** (rate − controlRate) / controlRate; null when the control converted nobody. */
  relativeUplift: number | null
  ci95: [number, number] | null
  pValue: number | null
}

const Z95 = 1.959963984540054

export function twoProportionTest(control: Proportion, variant: Proportion): TwoProportionResult {
  const pA = control.units > 0 ? control.conversions / control.units : 0
  const pB = variant.units > 0 ? variant.conversions / variant.units : 0
  if (control.units === 0 || variant.units === 0) return { controlRate: pA, rate: pB, relativeUplift: null, ci95: null, pValue: null }
  const pooled = (control.conversions + variant.conversions) / (control.units + variant.units)
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / control.units + 1 / variant.units))
  const pValue = se === 0 ? null : 2 * (1 - normalCdf(Math.abs(pB - pA) / se))
  if (pA === 0) return { controlRate: pA, rate: pB, relativeUplift: null, ci95: null, pValue }
  const vA = (pA * (1 - pA)) / control.units
  const vB = (pB * (1 - pB)) / variant.units
  const rel = (pB - pA) / pA
  const seRel = Math.sqrt(vB / (pA * pA) + (pB * pB * vA) / (pA ** 4))
  return { controlRate: pA, rate: pB, relativeUplift: rel, ci95: [rel - Z95 * seRel, rel + Z95 * seRel], pValue }
}

/** P(p_variant > p_control) under Beta(1 + conversions, 1 + misses) posteriors (uniform prior), exactly. */
export function chanceToBeatControl(control: Proportion, variant: Proportion): number {
  const aA = 1 + control.conversions
  const bA = 1 + control.units - control.conversions
  const aB = 1 + variant.conversions
  const bB = 1 + variant.units - variant.conversions
  let total = 0
  const base = logBeta(aA, bA)
  for (let i = 0; i < aB; i++) total += Math.exp(logBeta(aA + i, bA + bB) - Math.log(bB + i) - logBeta(1 + i, bB) - base)
  return Math.min(1, Math.max(0, total))
}

export interface SrmResult { chiSquare: number; pValue: number; flagged: boolean; expected: number[] }

/** Units per variation against the configured weights (normalized); flagged when p < 0.001 with ≥ 8 units in each. */
export function sampleRatioMismatch(observed: readonly number[], weights: readonly number[]): SrmResult {
  const n = observed.reduce((s, x) => s + x, 0)
  const w = weights.reduce((s, x) => s + x, 0)
  const expected = weights.map((x) => (n * x) / w)
  const chiSquare = observed.reduce((s, o, i) => (expected[i]! > 0 ? s + (o - expected[i]!) ** 2 / expected[i]! : s), 0)
  const pValue = n === 0 ? 1 : chiSquareSurvival(chiSquare, observed.length - 1)
  return { chiSquare, pValue, flagged: pValue < 0.001 && observed.every((o) => o >= 8), expected }
}

// ---------------------------------------------------------------------------------------------------------------
// Mean metrics (a goal's events counted or summed per unit): Welch's t-test.

/**
 * The regularized incomplete beta I_x(a, b), by the continued fraction of Numerical Recipes 3rd ed. §6.4 (modified
 * Lentz), using the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges slowly.
 */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0
  if (x >= 1) return 1
  const front = Math.exp(a * Math.log(x) + b * Math.log(1 - x) - logBeta(a, b))
  if (x > (a + 1) / (a + b + 2)) return 1 - (front * betaFraction(1 - x, b, a)) / b
  return (front * betaFraction(x, a, b)) / a
}

function betaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300
  let c = 1
  let d = 1 - ((a + b) * x) / (a + 1)
  if (Math.abs(d) < tiny) d = tiny
  d = 1 / d
  let h = d
  for (let m = 1; m < 10_000; m++) {
    const m2 = 2 * m
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2))
    d = 1 + aa * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + aa / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    h *= d * c
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1))
    d = 1 + aa * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + aa / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    const delta = d * c
    h *= delta
    if (Math.abs(delta - 1) < 1e-15) break
  }
  return h
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom (any real df > 0): I_{df/(df+t²)}(df/2, 1/2) / 2 in the tail. */
export function studentTCdf(t: number, df: number): number {
  if (!Number.isFinite(t)) return t > 0 ? 1 : 0
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5)
  return t > 0 ? 1 - tail : tail
}

/** The t with P(T ≤ t) = p, by bisection on the CDF (monotone; 200 halvings reach double precision). */
export function studentTQuantile(p: number, df: number): number {
  if (p <= 0) return -Infinity
  if (p >= 1) return Infinity
  if (p === 0.5) return 0
  if (p < 0.5) return -studentTQuantile(1 - p, df)
  let lo = 0
  let hi = 1
  while (studentTCdf(hi, df) < p) hi *= 2
  for (let i = 0; i < 200 && hi - lo > 1e-13 * hi; i++) {
    const mid = (lo + hi) / 2
    if (studentTCdf(mid, df) < p) lo = mid
    else hi = mid
  }
  return (lo + hi) / 2
}

/** A mean metric's sufficient statistics in one variation: units, the mean per unit, and the sample variance (n − 1). */
export interface MeanSample { units: number; mean: number; variance: number }

export interface WelchResult {
  /** variant mean − control mean */
  difference: number
  /** 95% interval of the difference, from the t distribution with Welch–Satterthwaite degrees of freedom. */
  differenceCi95: [number, number] | null
  /** (variant − control) / control; null when the control's mean is 0. */
  relativeUplift: number | null
  /** 95% interval of the relative uplift, delta method, same t quantile. */
  ci95: [number, number] | null
  t: number | null
  df: number | null
  pValue: number | null
}

/**
 * Welch's unequal-variances t-test of variant against control (Welch 1947; the test R's `t.test(var.equal = FALSE)` and
 * SciPy's `ttest_ind(equal_var = False)` run): t = (mB − mA) / √(vA/nA + vB/nB), degrees of freedom by
 * Welch–Satterthwaite ν = (vA/nA + vB/nB)² / ((vA/nA)²/(nA − 1) + (vB/nB)²/(nB − 1)), two-sided p = 2·P(T_ν > |t|).
 * The relative uplift's interval uses the delta method (var ≈ vB/(nB·mA²) + mB²·vA/(nA·mA⁴)) with the same t quantile,
 * as GrowthBook's frequentist engine does for relative effects of mean metrics (gbstats, frequentist/tests.py).
 * Each variation needs at least two units; with no spread at all (both variances 0) there is no test.
 */
export function welchTTest(control: MeanSample, variant: MeanSample): WelchResult {
  const difference = variant.mean - control.mean
  const none = { difference, differenceCi95: null, relativeUplift: control.mean !== 0 ? difference / control.mean : null, ci95: null, t: null, df: null, pValue: null }
  if (control.units < 2 || variant.units < 2) return none
  const sA = control.variance / control.units
  const sB = variant.variance / variant.units
  const se2 = sA + sB
  if (!(se2 > 0)) return none
  const se = Math.sqrt(se2)
  const df = (se2 * se2) / ((sA * sA) / (control.units - 1) + (sB * sB) / (variant.units - 1))
  const t = difference / se
  const pValue = Math.min(1, 2 * (1 - studentTCdf(Math.abs(t), df)))
  const q = studentTQuantile(0.975, df)
  const result: WelchResult = { ...none, differenceCi95: [difference - q * se, difference + q * se], t, df, pValue }
  if (control.mean === 0) return result
  const mA = control.mean
  const seRel = Math.sqrt(sB / (mA * mA) + (variant.mean * variant.mean * sA) / (mA ** 4))
  const rel = difference / mA
  return { ...result, relativeUplift: rel, ci95: [rel - q * seRel, rel + q * seRel] }
}
