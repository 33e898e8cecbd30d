import { withTenant } from '../../../lib/db.js'
import { compileDefinition } from '../../../domains/assessments/definition.js'
import { rescoreRun } from '../../../domains/assessments/rescoring.js'
import { Definition } from '../../../domains/assessments/schemas.js'
import { HEALTH_DEFINITION } from '../../../domains/assessments/sample-definitions.js'
import { score } from '../../../domains/assessments/scoring.js'
import { publishDraftIn, saveDraft } from '../../../domains/assessments/service.js'
import type { BenchDatabase } from '../harness.js'
import type { BenchContext } from './context.js'

/**
 * Re-scoring completed sessions after a rubric change, as the job does it (rescoreRun: keyset batches, one
 * transaction each, history kept): time and peak memory. The sessions, their answers (random among each question's
 * realistic answers) and their results are built inside the database with generate_series. Beside it, in the same
 * run: the pure scoring of the same answers in memory (the floor: no I/O), and the naive way (one transaction per
 * session: read its answers, score, write) on a sample, extrapolated.
 */
export async function benchRescore(db: BenchDatabase, ctx: BenchContext): Promise<void> {
  const sessions = Number(process.env.BENCH_RESCORE_SESSIONS ?? 20_000)
  const batchSize = Number(process.env.BENCH_RESCORE_BATCH ?? 2000)
  const naiveSample = Math.min(sessions, Number(process.env.BENCH_NAIVE_SAMPLE ?? 1000))
  let t = performance.now()
  const [v1] = await db.owner<{ id: string }[]>`select id from assessments.assessment_versions where assessment_id = ${ctx.healthId} and version = 1`
  await db.owner`
    insert into assessments.sessions (tenant_id, assessment_id, version_id, channel, status, progress, answered_count, demographics, started_at, completed_at, current_question_id)
    select ${ctx.tenantId}, ${ctx.healthId}, ${v1!.id}, case when i % 3 = 0 then 'whatsapp' else 'web' end, 'completed', 100, 13,
           jsonb_build_object('age', 18 + (i % 60)), now() - interval '3 days', now() - interval '3 days' + (interval '1 second' * (120 + i % 600)), null
      from generate_series(1, ${sessions}) i`
  await db.owner`
    with qs(question_id, candidates) as (values
      ('sleep_hours', '["lt5","h5_6","h7_8","h7_8","gt9"]'::jsonb), ('sleep_quality', '[1,2,3,4,4,5]'), ('exercise_days', '["d0","d1_2","d3_4","d5"]'),
      ('activities', '[[],["walking"],["running","cycling"],["yoga","walking","swimming"],["strength"]]'), ('smoker', '[false,false,false,true]'),
      ('cigarettes', '[3,10,20]'), ('alcohol', '["never","monthly","weekly","daily"]'), ('fruit_veg', '["p0_1","p2_3","p4_5","p6"]'),
      ('water', '["w1_3","w4_6","w7"]'), ('stress', '[1,2,3,4,5,6,7,8,9,10]'), ('mood', '["great","good","ok","low"]'),
      ('weight_kg', '[52,61.5,70,78.5,88,97,112]'), ('height_cm', '[156,163,170,176,183,192]'), ('goals', '["Sleep better",null]'))
    insert into assessments.responses (tenant_id, session_id, question_id, answer, response_ms)
    select s.tenant_id, s.id, qs.question_id, jsonb_build_object('value', qs.candidates -> floor(random() * jsonb_array_length(qs.candidates))::int), 1000 + floor(random() * 9000)::int
      from assessments.sessions s cross join qs where s.assessment_id = ${ctx.healthId} and s.status = 'completed'`
  await db.owner`
    insert into assessments.results (tenant_id, session_id, assessment_id, scored_version_id, rubric_version, total_score, category_scores, band, band_label, recommendations)
    select s.tenant_id, s.id, s.assessment_id, s.version_id, 1, 50, '{"sleep": 50}', 'fair', 'Fair', '[]'
      from assessments.sessions s where s.assessment_id = ${ctx.healthId} and s.status = 'completed'
    on conflict (session_id) do nothing`
  await db.owner`vacuum analyze assessments.sessions, assessments.responses, assessments.results`
  const [counts] = await db.owner<{ sessions: number; responses: number }[]>`
    select (select count(*)::int from assessments.sessions where status = 'completed' and tenant_id = ${ctx.tenantId}) as sessions, (select count(*)::int from assessments.responses where tenant_id = ${ctx.tenantId}) as responses`
  console.log(`\nbuilt ${counts!.sessions.toLocaleString('en')} completed sessions with ${counts!.responses.toLocaleString('en')} answers and their results inside the database in ${((performance.now() - t) / 1000).toFixed(1)} s`)

  // A rubric change: new bands and weights, published as version 2 (same questions), which starts the run.
  const who = { tenantId: ctx.tenantId, actor: 'bench', requestId: null }
  const changed = JSON.parse(JSON.stringify(HEALTH_DEFINITION))
  changed.rubric.total = 'clamp(round(c.sleep * 0.25 + c.activity * 0.25 + c.nutrition * 0.2 + c.habits * 0.1 + c.mind * 0.2 + f.bmi_adjustment - f.smoking_penalty, 1), 0, 100)'
  await saveDraft(db.sql, who, ctx.healthId, Definition.parse(changed))
  const published = await withTenant(db.sql, ctx.tenantId, (tx) => publishDraftIn(tx, who, ctx.healthId))
  const run = published.rescoringRun!

  let peakRss = process.memoryUsage().rss
  let peakHeap = process.memoryUsage().heapUsed
  const baseRss = peakRss
  const sampler = setInterval(() => {
    const m = process.memoryUsage()
    peakRss = Math.max(peakRss, m.rss)
    peakHeap = Math.max(peakHeap, m.heapUsed)
  }, 50)
  t = performance.now()
  await rescoreRun(db.sql, { tenantId: ctx.tenantId, runId: run.id }, { batchSize, batchesPerJob: 1_000_000 })
  const jobSeconds = (performance.now() - t) / 1000
  clearInterval(sampler)
  const [done] = await db.owner<{ status: string; rescored: number; unchanged: number; skipped: number; batches: number; history: number }[]>`
    select status, rescored, unchanged, skipped, batches, (select count(*)::int from assessments.result_history where run_id = ${run.id}) as history from assessments.rescoring_runs where id = ${run.id}`

  // The floor: the same scoring, in memory, of answers already loaded.
  const compiled = compileDefinition(Definition.parse(changed)).compiled!
  const answers = await db.owner<{ a: Record<string, { value: never }> }[]>`
    select jsonb_object_agg(question_id, answer) as a from assessments.responses where tenant_id = ${ctx.tenantId} group by session_id limit ${sessions}`
  t = performance.now()
  for (const row of answers) score(compiled, new Map(Object.entries(row.a).map(([k, v]) => [k, v.value])))
  const pureSeconds = (performance.now() - t) / 1000

  // The naive way: one transaction per session.
  const sample = await db.owner<{ id: string; resultId: string }[]>`select s.id, r.id as result_id from assessments.sessions s join assessments.results r on r.session_id = s.id where s.tenant_id = ${ctx.tenantId} limit ${naiveSample}`
  t = performance.now()
  for (const s of sample) {
    await withTenant(db.sql, ctx.tenantId, async (tx) => {
      const rows = await tx<{ questionId: string; answer: { value: never } }[]>`select question_id, answer from assessments.responses where session_id = ${s.id}`
      const r = score(compiled, new Map(rows.map((x) => [x.questionId, x.answer.value])))
      await tx`update assessments.results set total_score = ${r.totalScore}, category_scores = ${tx.json(r.categoryScores)}, band = ${r.band} where id = ${s.resultId}`
    })
  }
  const naivePerSession = (performance.now() - t) / 1000 / sample.length
  const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MB`
  console.log(`\nRe-scoring after a rubric change (batches of ${batchSize.toLocaleString('en')}, history kept):`)
  console.log(`  job (rescoreRun)        ${jobSeconds.toFixed(1)} s for ${sessions.toLocaleString('en')} sessions = ${(sessions / jobSeconds).toFixed(0)} sessions/s; run ${done!.status}, ${done!.rescored.toLocaleString('en')} rescored, ${done!.unchanged.toLocaleString('en')} unchanged, ${done!.skipped} skipped, ${done!.batches} batches, ${done!.history.toLocaleString('en')} history rows`)
  console.log(`  memory                  peak RSS ${mb(peakRss)} (${mb(peakRss - baseRss)} above the start), peak heap ${mb(peakHeap)}`)
  console.log(`  pure scoring in memory  ${pureSeconds.toFixed(2)} s for ${answers.length.toLocaleString('en')} sessions = ${(answers.length / pureSeconds).toFixed(0)} sessions/s (the floor: no I/O)`)
  console.log(`  naive, one tx each      ${(naivePerSession * 1000).toFixed(2)} ms per session on ${sample.length.toLocaleString('en')} → ${(naivePerSession * sessions).toFixed(1)} s extrapolated; the job is ${((naivePerSession * sessions) / jobSeconds).toFixed(1)}× faster`)
}
