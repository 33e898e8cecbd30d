/**
 * The AI analysis cache, measured (issue 14: "over 10,000 simulated participants drawn from realistic answer
 * distributions, the cache hit rate (against the seeds' 60–85% claim), provider calls avoided; the rate limit holds
 * exactly"). Three parts:
 *
 * 1. Simulation, in process: BENCH_AI_PARTICIPANTS (10,000) participants per assessment (health, wealth), answers
 *    drawn from skewed per-question distributions (seeded, reproducible), scored by the real scoring code, their
 *    patterns built by the real pattern code, arriving uniformly over a window; the cache (TTL AI_CACHE_TTL, 1 h) is
 *    replayed over the arrivals. The baseline is no cache: one provider call per participant.
 * 2. The real path on a sample (BENCH_AI_REAL, 300): the same draws completed as sessions in PostgreSQL and analysed by
 *    the job's function against the AI emulator over HTTP; the provider calls it made must equal the simulation's
 *    misses for the same sequence (all within one TTL), which is what makes part 1 trustworthy.
 * 3. The rate limit: 60 analyses of one lead, all different patterns, at once, with the limit at 50: exactly 50 calls.
 */
import { Definition, type DefinitionInput } from '../../../domains/assessments/schemas.js'
import { compileDefinition, visibleQuestions, type CompiledDefinition } from '../../../domains/assessments/definition.js'
import { score } from '../../../domains/assessments/scoring.js'
import { HEALTH_DEFINITION, WEALTH_DEFINITION } from '../../../domains/assessments/sample-definitions.js'
import { patternHash, patternOf, type PatternDetail } from '../../../domains/assessments/ai/pattern.js'
import { openAiCompatibleProvider } from '../../../domains/assessments/ai/providers.js'
import { analyzeResult } from '../../../domains/assessments/ai/service.js'
import { withTenant } from '../../../lib/db.js'
import { startAiEmulator } from '../../emulators/ai-provider.js'
import { testConfig } from '../../../test/apps.js'
import { completeSessionOf, makeAssessment } from '../../../test/factories/assessments-rows.js'
import { makeLead } from '../../../test/factories/marketing-rows.js'
import { makeTenant } from '../../../test/factories/tenants.js'
import type { BenchDatabase } from '../harness.js'
import { seededRandom } from '../../../lib/seeded-random.js'

type Answers = Record<string, unknown>
type Demo = Record<string, string | number>

/** Seeded (lib/seeded-random.ts), so every run draws the same participants. */
const prng = seededRandom

const normal = (r: () => number) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())

/**
 * Answers as people give them: each choice question has its own lean (a binomial over its options, p drawn once per
 * question, so some questions are lopsided), yes/no likewise, multiple choice picks each option with its own
 * probability, numbers are normal around 40% of their range; ages normal around 42; genders as a census has them.
 */
function population(def: Definition, seed: number) {
  const r = prng(seed)
  const lean = new Map(def.questions.map((q) => [q.id, 0.2 + 0.6 * r()]))
  const picks = new Map(def.questions.map((q) => [q.id, (q.options ?? []).map(() => 0.1 + 0.3 * r())]))
  const binomial = (n: number, p: number) => { let k = 0; for (let i = 0; i < n; i++) if (r() < p) k++; return k }
  return (): { answers: Answers; demographics: Demo } => {
    const answers: Answers = {}
    for (const q of def.questions) {
      const p = lean.get(q.id)!
      if (q.type === 'single_choice') answers[q.id] = q.options![binomial(q.options!.length - 1, p)]!.id
      else if (q.type === 'yes_no') answers[q.id] = r() < p
      else if (q.type === 'scale') {
        const lo = q.min ?? 1, hi = q.max ?? 5, step = q.step ?? 1
        answers[q.id] = lo + step * binomial(Math.round((hi - lo) / step), p)
      } else if (q.type === 'multiple_choice') {
        const chosen = q.options!.filter((_, i) => r() < picks.get(q.id)![i]!).map((o) => o.id).slice(0, q.maxSelections ?? 30)
        answers[q.id] = chosen.length >= (q.minSelections ?? 0) ? chosen : q.options!.slice(0, q.minSelections ?? 0).map((o) => o.id)
      } else if (q.type === 'number') {
        const lo = q.min ?? 0, hi = q.max ?? 100
        const v = Math.min(hi, Math.max(lo, lo + (hi - lo) * (0.4 + 0.15 * normal(r))))
        answers[q.id] = q.integer ? Math.round(v) : Math.round(v * 10) / 10
      } else answers[q.id] = null
    }
    const g = r()
    const demographics: Demo = { age: Math.round(Math.min(90, Math.max(16, 42 + 14 * normal(r)))), gender: g < 0.52 ? 'female' : g < 0.97 ? 'male' : g < 0.99 ? 'other' : 'na' }
    return { answers, demographics }
  }
}

function patternKey(c: CompiledDefinition, def: Definition, type: string, draw: { answers: Answers; demographics: Demo }, detail: PatternDetail = 'answers'): string {
  const map = new Map(Object.entries(draw.answers)) as Map<string, never>
  const visible = new Set(visibleQuestions(def.questions, map).map((q) => q.id))
  const answers = Object.fromEntries(Object.entries(draw.answers).filter(([k]) => visible.has(k))) as Record<string, never>
  const s = score(c, new Map(Object.entries(answers)))
  return patternHash(patternOf({
    assessment: { type, name: type }, versionId: 'v', rubricVersion: 1,
    questions: def.questions, categories: def.categories, rubric: def.rubric, profileFields: def.profileFields,
    answers, demographics: draw.demographics,
    result: { band: s.band, bandLabel: s.bandLabel, categoryScores: s.categoryScores, recommendations: s.recommendations },
  }, { name: 'openai-compatible', model: 'gpt-test' }, detail)).toString('hex')
}

/** Hit rate of a TTL cache over `keys` arriving uniformly over `windowSeconds` (seeded times). */
function replay(keys: string[], windowSeconds: number, ttlSeconds: number, seed: number): { hits: number; misses: number } {
  const r = prng(seed)
  const arrivals = keys.map((k) => ({ k, t: r() * windowSeconds })).sort((a, b) => a.t - b.t)
  const expires = new Map<string, number>()
  let hits = 0
  for (const { k, t } of arrivals) {
    const e = expires.get(k)
    if (e !== undefined && e > t) hits++
    else expires.set(k, t + ttlSeconds)
  }
  return { hits, misses: keys.length - hits }
}

export async function runAiCacheBench(db: BenchDatabase): Promise<void> {
  const participants = Number(process.env.BENCH_AI_PARTICIPANTS ?? 10_000)
  const realN = Number(process.env.BENCH_AI_REAL ?? 300)
  const ttl = Number(process.env.AI_CACHE_TTL ?? 3600)
  const assessments: [string, DefinitionInput][] = [['health', HEALTH_DEFINITION], ['wealth', WEALTH_DEFINITION]]

  console.log(`\n## AI analysis cache: ${participants.toLocaleString('en')} simulated participants per assessment, TTL ${ttl} s`)
  console.log('| assessment | pattern (AI_PATTERN_DETAIL) | arrivals over | distinct patterns | provider calls (no cache) | calls with the cache | hit rate | calls avoided |')
  console.log('|---|---|---|---:|---:|---:|---:|---:|')
  const drawsOf = new Map<string, { answers: Answers; demographics: Demo }[]>()
  for (const [i, [type, input]] of assessments.entries()) {
    const def = Definition.parse(input)
    const { compiled } = compileDefinition(def)
    const next = population(def, 1000 + i)
    const draws = Array.from({ length: participants }, next)
    drawsOf.set(type, draws)
    for (const detail of ['answers', 'categories'] as const) {
      const keys = draws.map((d) => patternKey(compiled!, def, type, d, detail))
      const distinct = new Set(keys).size
      for (const [label, seconds] of [['1 hour', 3600], ['1 day', 86_400], ['1 week', 604_800]] as const) {
        const { hits, misses } = replay(keys, seconds, ttl, 7 + i)
        console.log(`| ${type} | ${detail} | ${label} | ${distinct.toLocaleString('en')} | ${participants.toLocaleString('en')} | ${misses.toLocaleString('en')} | ${(100 * hits / participants).toFixed(1)}% | ${hits.toLocaleString('en')} |`)
      }
    }
  }

  // 2. The real path on a sample: sessions in PostgreSQL, the job's function, the emulator over HTTP.
  const ai = await startAiEmulator()
  try {
    const provider = openAiCompatibleProvider({ baseUrl: ai.baseUrl, apiKey: 'sk-bench', model: 'gpt-test', timeoutMs: 10_000 })
    const tenant = await makeTenant(db.sql)
    const assessment = await makeAssessment(db.sql, tenant)
    const def = Definition.parse(HEALTH_DEFINITION)
    const { compiled } = compileDefinition(def)
    const sample = drawsOf.get('health')!.slice(0, realN)
    const deps = { sql: db.sql, provider, config: testConfig() }
    const started = performance.now()
    const outcomes: Record<string, number> = {}
    for (const d of sample) {
      const s = await completeSessionOf(db.sql, tenant, assessment.id, d.answers, { demographics: d.demographics })
      const [r] = await db.owner<{ id: string }[]>`select id from assessments.results where session_id = ${s.sessionId}`
      const o = await analyzeResult(deps, tenant.id, r!.id)
      outcomes[o] = (outcomes[o] ?? 0) + 1
    }
    const seconds = (performance.now() - started) / 1000
    const expectedCalls = new Set(sample.map((d) => patternKey(compiled!, def, 'health', d))).size
    console.log(`\nReal path, ${realN} health sessions completed and analysed in ${seconds.toFixed(1)} s: ${JSON.stringify(outcomes)}; provider calls ${ai.completions.length}, simulation says ${expectedCalls} (${ai.completions.length === expectedCalls ? 'equal' : 'DIFFERENT'})`)

    // 3. The rate limit, exactly: 60 different patterns of one lead at once, limit 50.
    ai.reset()
    // A tenant of its own: the sample's cache entries above must not answer any of these.
    const fresh = await makeTenant(db.sql)
    const freshAssessment = await makeAssessment(db.sql, fresh)
    const lead = await withTenant(db.sql, fresh.id, (tx) => makeLead(tx, fresh.id))
    const results: string[] = []
    const base = sample[0]!.answers
    for (const age of [18, 28, 38, 48, 58, 68, 78, 88, 98, 108]) for (const gender of ['female', 'male', 'other']) for (const smoker of [false, true]) {
      const s = await completeSessionOf(db.sql, fresh, freshAssessment.id, { ...base, smoker, cigarettes: 12 }, { leadId: lead.id, demographics: { age, gender } })
      const [r] = await db.owner<{ id: string }[]>`select id from assessments.results where session_id = ${s.sessionId}`
      results.push(r!.id)
    }
    const limited = { ...deps, config: testConfig({ AI_RATE_LIMIT_PER_HOUR: '50' }) }
    const got = await Promise.allSettled(results.map((id) => analyzeResult(limited, fresh.id, id)))
    const provided = got.filter((g) => g.status === 'fulfilled' && g.value === 'provider').length
    const ruled = got.filter((g) => g.status === 'fulfilled' && g.value === 'rules').length
    console.log(`Rate limit: ${results.length} analyses of one lead at once, limit 50 an hour: ${provided} provider calls (emulator saw ${ai.completions.length}), ${ruled} answered by the rules, ${got.length - provided - ruled} other${got.filter((g) => g.status === 'rejected').map((g) => ` (${String((g as PromiseRejectedResult).reason).slice(0, 120)})`).join('')}`)
  } finally {
    await ai.stop()
  }
}
