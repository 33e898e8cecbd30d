import { beforeAll, describe, expect, it } from 'vitest'
import { sha256 } from '../../lib/crypto.js'
import { isAppError } from '../../lib/errors.js'
import { useTestDatabase } from '../../test/db.js'
import { HEALTHY_ANSWERS, completeSessionOf, makeAssessment } from '../../test/factories/assessments-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { AnswerInbox } from './answer-inbox.js'
import type { AnswerBody, SessionStateView } from './schemas.js'
import { answerBatch, startWebSession } from './service.js'

const ORDER = ['sleep_hours', 'sleep_quality', 'exercise_days', 'activities', 'smoker', 'alcohol', 'fruit_veg', 'water', 'stress', 'mood', 'weight_kg', 'height_cm', 'goals']
const body = (questionId: string, value: unknown = HEALTHY_ANSWERS[questionId]): AnswerBody => ({ questionId, value: value as never, responseMs: 900 })

describe('the answer inbox (group-committed web answers)', () => {
  const db = useTestDatabase()
  let a: TestTenant
  let b: TestTenant
  let keyA: string
  let keyB: string
  let assessmentA: string
  beforeAll(async () => {
    a = await makeTenant(db.current.sql)
    b = await makeTenant(db.current.sql)
    const x = await makeAssessment(db.current.sql, a)
    keyA = x.publicKey
    assessmentA = x.id
    keyB = (await makeAssessment(db.current.sql, b)).publicKey
  })

  const start = (key: string) => startWebSession(db.current.sql, key, { demographics: { age: 40 } })
  const item = (token: string, b: AnswerBody) => ({ tokenHash: sha256(token), body: b })
  const code = (r: SessionStateView | Error) => (isAppError(r) ? r.code : r instanceof Error ? r.message : 'OK')
  const count = async (query: string) => (await db.current.owner.unsafe<{ n: number }[]>(query))[0]!.n
  /** Answers the first n questions of a session, one batch per answer. */
  async function answerFirst(token: string, n: number) {
    for (const id of ORDER.slice(0, n)) expect(code((await answerBatch(db.current.sql, [item(token, body(id))]))[0]!)).toBe('OK')
  }

  it('applies one batch across tenants: a session answers in order and sees its own earlier answer; each refusal stays alone', async () => {
    const s1 = await start(keyA)
    const s2 = await start(keyA)
    const s3 = await start(keyB)
    const unknown = `ast_${'x'.repeat(43)}`
    const results = await answerBatch(db.current.sql, [
      item(s1.token, body('sleep_hours')),
      item(s2.token, body('sleep_hours', 'h99')), // not an option: 400
      item(s1.token, body('sleep_quality')), // the current question only because of the answer before it
      item(unknown, body('sleep_hours')), // 404
      item(s2.token, body('exercise_days')), // not the current question: 409
      item(s3.token, body('sleep_hours')), // another tenant, same flush
      item(s1.token, body('sleep_quality')), // the same answer again: a retry, nothing changes
    ])
    expect(results.map(code)).toEqual(['OK', 'BAD_REQUEST', 'OK', 'NOT_FOUND', 'CONFLICT', 'OK', 'OK'])
    // Each caller gets the state right after its own answer, not the batch's end.
    const [r0, , r2, , , r5, r6] = results as SessionStateView[]
    expect(r0).toMatchObject({ answered: 1, question: { id: 'sleep_quality' } })
    expect(r2).toMatchObject({ answered: 2, question: { id: 'exercise_days' } })
    expect(r6).toMatchObject({ answered: 2, question: { id: 'exercise_days' } })
    expect(r5).toMatchObject({ sessionId: s3.state.sessionId, answered: 1 })

    const sessions = await db.current.owner<{ id: string; currentQuestionId: string; answeredCount: number; n: number }[]>`
      select s.id, s.current_question_id, s.answered_count, (select count(*)::int from assessments.responses r where r.session_id = s.id) as n
        from assessments.sessions s where s.id = any(${[s1.state.sessionId, s2.state.sessionId, s3.state.sessionId]}::uuid[])`
    const byId = new Map(sessions.map((s) => [s.id, s]))
    expect(byId.get(s1.state.sessionId)).toMatchObject({ currentQuestionId: 'exercise_days', answeredCount: 2, n: 2 })
    expect(byId.get(s2.state.sessionId)).toMatchObject({ currentQuestionId: 'sleep_hours', answeredCount: 0, n: 0 })
    expect(byId.get(s3.state.sessionId)).toMatchObject({ currentQuestionId: 'sleep_quality', answeredCount: 1, n: 1 })
    // One answered event per accepted answer, each filed under its own tenant (a flush writes tenants in no set order;
    // within one, in arrival order).
    const events = await db.current.owner<{ tenantId: string; session: string; question: string }[]>`
      select tenant_id, properties->>'sessionId' as session, properties->>'questionId' as question from analytics.events
       where name = 'assessment.answered' and properties->>'sessionId' = any(${[s1.state.sessionId, s2.state.sessionId, s3.state.sessionId]}::text[])
       order by tenant_id = ${a.id} desc, id`
    expect(events).toEqual([
      { tenantId: a.id, session: s1.state.sessionId, question: 'sleep_hours' },
      { tenantId: a.id, session: s1.state.sessionId, question: 'sleep_quality' },
      { tenantId: b.id, session: s3.state.sessionId, question: 'sleep_hours' },
    ])
  })

  it('completes a session in the batch with its result and analysis job, once; an answer after it in the same batch is 409', async () => {
    const s = await start(keyA)
    await answerFirst(s.token, ORDER.length - 1)
    const [done, late] = await answerBatch(db.current.sql, [item(s.token, body('goals')), item(s.token, body('goals', 'again'))])
    expect(done).toMatchObject({ status: 'completed', progress: 100, result: { band: expect.any(String) } })
    expect(code(late!)).toBe('CONFLICT')
    expect((late as Error).message).toMatch(/already completed/)
    // The same answers through the sequential path give the same result.
    const reference = await completeSessionOf(db.current.sql, a, assessmentA, HEALTHY_ANSWERS, { demographics: { age: 40 } })
    const [ref] = await db.current.owner<{ totalScore: number; band: string; categoryScores: Record<string, number> }[]>`
      select total_score::float8 as total_score, band, category_scores from assessments.results where session_id = ${reference.sessionId}`
    expect((done as SessionStateView).result).toMatchObject({ totalScore: ref!.totalScore, band: ref!.band, categoryScores: ref!.categoryScores })
    expect(await count(`select count(*)::int as n from assessments.results where session_id = '${s.state.sessionId}'`)).toBe(1)
    expect(await count(`select count(*)::int as n from graphile_worker._private_jobs where key = 'assessments:analyze:${(done as SessionStateView).result!.id}'`)).toBe(1)
    expect(await count(`select count(*)::int as n from analytics.events where name = 'assessment.completed' and properties->>'sessionId' = '${s.state.sessionId}'`)).toBe(1)
  })

  it('groups concurrent answers and answers each after its commit; a value PostgreSQL refuses fails only its own answer', async () => {
    const inbox = new AnswerInbox(db.current.sql)
    const sessions = await Promise.all(Array.from({ length: 12 }, () => start(keyA)))
    const offender = await start(keyA)
    await answerFirst(offender.token, ORDER.length - 1)
    const settled = await Promise.allSettled([
      ...sessions.map((s) => inbox.answer(s.token, body('sleep_hours'))),
      // NUL cannot be stored in jsonb: the grouped statement fails and the group commit writes each member alone.
      inbox.answer(offender.token, body('goals', 'sleep \u0000 better')),
      ...sessions.map((s) => inbox.answer(s.token, body('sleep_quality'))),
    ])
    const codes = settled.map((r) => (r.status === 'fulfilled' ? 'OK' : isAppError(r.reason) ? r.reason.code : String(r.reason)))
    expect(codes.filter((c) => c === 'OK')).toHaveLength(24)
    expect(codes[12]).toBe('BAD_REQUEST')
    const ids = sessions.map((s) => s.state.sessionId)
    expect(await count(`select count(*)::int as n from assessments.responses where session_id = any('{${ids.join(',')}}'::uuid[])`)).toBe(24)
    expect(await count(`select count(*)::int as n from assessments.sessions where id = '${offender.state.sessionId}' and status = 'in_progress' and current_question_id = 'goals'`)).toBe(1)
  })

  it('keeps one session in order with several flushes in flight: answers sent without waiting apply as sent', async () => {
    const inbox = new AnswerInbox(db.current.sql, { maxConcurrentFlushes: 3, minConcurrentBatch: 1 })
    const eager = await start(keyA)
    const others = await Promise.all(Array.from({ length: 6 }, () => start(keyA)))
    // The eager participant sends every answer at once (a refused one in the middle), while others answer alongside:
    // several batches are in flight, and none may apply an answer before the one sent before it.
    const eagerAnswers = [
      ...ORDER.slice(0, 5).map((id) => inbox.answer(eager.token, body(id))),
      inbox.answer(eager.token, body('alcohol', 'always')), // not an option: 400, and the next one is still current
      ...ORDER.slice(5).map((id) => inbox.answer(eager.token, body(id))),
    ]
    const otherAnswers = others.flatMap((o) => ORDER.slice(0, 3).map((id) => inbox.answer(o.token, body(id))))
    const eagerSettled = await Promise.allSettled(eagerAnswers)
    const otherSettled = await Promise.allSettled(otherAnswers)
    const codeOf = (r: PromiseSettledResult<SessionStateView>) => (r.status === 'fulfilled' ? 'OK' : isAppError(r.reason) ? r.reason.code : String(r.reason))
    expect(eagerSettled.map(codeOf)).toEqual([...Array(5).fill('OK'), 'BAD_REQUEST', ...Array(ORDER.length - 5).fill('OK')])
    // Each answer saw the one before it: progress only grows, and the last completed the session.
    const answered = eagerSettled.flatMap((r) => (r.status === 'fulfilled' ? [r.value.answered] : []))
    expect(answered).toEqual([...answered].sort((x, y) => x - y))
    expect((eagerSettled.at(-1) as PromiseFulfilledResult<SessionStateView>).value).toMatchObject({ status: 'completed', result: { band: expect.any(String) } })
    expect(otherSettled.map(codeOf)).toEqual(Array(otherAnswers.length).fill('OK'))
    expect(await count(`select count(*)::int as n from assessments.responses where session_id = '${eager.state.sessionId}' and revisions = 1`)).toBe(ORDER.length)
    // In the order sent, one event each.
    const events = await db.current.owner<{ question: string }[]>`
      select properties->>'questionId' as question from analytics.events
       where name = 'assessment.answered' and properties->>'sessionId' = ${eager.state.sessionId} order by occurred_at, id`
    expect(events.map((e) => e.question)).toEqual(ORDER)
  })

  it('answers a repeated answer sent while the first is in flight as the same state, stored once', async () => {
    const inbox = new AnswerInbox(db.current.sql, { maxConcurrentFlushes: 3, minConcurrentBatch: 1 })
    const s = await start(keyA)
    const [first, again] = await Promise.all([inbox.answer(s.token, body('sleep_hours')), inbox.answer(s.token, body('sleep_hours'))])
    expect(first).toMatchObject({ answered: 1, question: { id: 'sleep_quality' } })
    expect(again).toMatchObject({ answered: 1, question: { id: 'sleep_quality' } })
    expect(await count(`select count(*)::int as n from assessments.responses where session_id = '${s.state.sessionId}' and revisions = 1`)).toBe(1)
  })

  it('refuses a malformed token without a query', async () => {
    const inbox = new AnswerInbox(db.current.sql)
    await expect(inbox.answer('nope', body('sleep_hours'))).rejects.toMatchObject({ code: 'NOT_FOUND' })
  })
})
