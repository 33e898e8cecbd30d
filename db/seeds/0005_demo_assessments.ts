/**
 * The demo tenant's assessments: a health check and a financial health check (domains/assessments/sample-definitions.ts),
 * published, with fixed public keys so the README's curl examples work, and sixty sessions taken through the domain
 * the way participants take them (answers drawn from realistic distributions, a few left part-way for the report's
 * drop-off), so results and the report have something to show. Idempotent: an assessment already there is left alone.
 * (The partner and its link come with the partners seed.)
 */
import type { Tx } from '../../lib/db.js'
import { setTenant } from '../../lib/db.js'
import { scaleSteps } from '../../domains/assessments/definition.js'
import * as q from '../../domains/assessments/queries.js'
import { CreateAssessmentBody, type Question } from '../../domains/assessments/schemas.js'
import { HEALTH_DEFINITION, WEALTH_DEFINITION } from '../../domains/assessments/sample-definitions.js'
import { answerQuestion, createAssessmentIn, publishDraftIn, saveProfile, sessionContext, startSession } from '../../domains/assessments/service.js'
import { DEMO_TENANT_ID } from '../demo-history.js'
import { seededRandom } from '../../lib/seeded-random.js'

export const DEMO_ASSESSMENTS = [
  { key: 'health_check', type: 'health' as const, name: 'Health check', publicKey: 'ak_demo_health_check_000001', definition: HEALTH_DEFINITION },
  { key: 'wealth_check', type: 'wealth' as const, name: 'Financial health check', publicKey: 'ak_demo_wealth_check_000001', definition: WEALTH_DEFINITION },
]
const SESSIONS_EACH = 30
const who = { tenantId: DEMO_TENANT_ID, actor: 'seed', requestId: null }

/** Seeded (lib/seeded-random.ts), so every seeded demo is the same. */
const random = seededRandom

/** A plausible answer: options weighted towards the middle, numbers around typical values. */
function answerFor(question: Question, rnd: () => number): unknown {
  const pick = <T>(xs: readonly T[]) => xs[Math.min(xs.length - 1, Math.floor(((rnd() + rnd()) / 2) * xs.length))]!
  switch (question.type) {
    case 'single_choice': return pick(question.options!.map((o) => o.id))
    case 'multiple_choice': return question.options!.filter(() => rnd() < 0.3).slice(0, question.maxSelections ?? 30).map((o) => o.id)
    case 'yes_no': return rnd() < 0.3
    case 'scale': return pick(scaleSteps(question))
    case 'text': return rnd() < 0.5 ? 'More energy during the day' : null
    case 'number': {
      const typical: Record<string, () => number> = {
        weight_kg: () => Math.round(55 + rnd() * 45), height_cm: () => Math.round(155 + rnd() * 35), cigarettes: () => Math.round(3 + rnd() * 17),
        monthly_income: () => Math.round(1500 + rnd() * 6000), monthly_expenses: () => Math.round(1200 + rnd() * 5000), emergency_months: () => Math.round(rnd() * 9),
      }
      return (typical[question.id] ?? (() => question.min ?? 1))()
    }
  }
}

export async function seed(tx: Tx): Promise<{ assessments: number; sessions: number }> {
  await setTenant(tx, DEMO_TENANT_ID)
  let created = 0
  let sessions = 0
  for (const [index, d] of DEMO_ASSESSMENTS.entries()) {
    if (await q.findAssessmentByKey(tx, d.key)) continue
    const a = await createAssessmentIn(tx, who, CreateAssessmentBody.parse({ key: d.key, type: d.type, name: d.name, definition: d.definition }), d.publicKey)
    await publishDraftIn(tx, who, a.id)
    created++
    const rnd = random(1000 + index)
    for (let i = 0; i < SESSIONS_EACH; i++) {
      const started = await startSession(tx, { assessmentId: a.id, channel: i % 3 === 0 ? 'whatsapp' : 'web', demographics: { age: 20 + Math.floor(rnd() * 50) } })
      let ctx = await sessionContext(tx, started.session)
      // One in six stops part-way: the report's drop-off.
      const stopAfter = rnd() < 1 / 6 ? 1 + Math.floor(rnd() * 6) : Infinity
      for (let answered = 0; ctx.session.currentQuestionId && answered < stopAfter; answered++) {
        const question = ctx.compiled.byId.get(ctx.session.currentQuestionId)!
        ctx = await answerQuestion(tx, ctx, { questionId: question.id, value: answerFor(question, rnd) as never, responseMs: Math.round(2000 + rnd() * 9000) })
      }
      if (ctx.session.status !== 'completed' && !ctx.session.currentQuestionId) await saveProfile(tx, ctx, { age: 35 })
      sessions++
    }
  }
  return { assessments: created, sessions }
}
