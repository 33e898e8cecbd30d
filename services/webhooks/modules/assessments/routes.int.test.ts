import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../../../lib/http/create-server.js'
import { buildTestWebhooks } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { HEALTHY_ANSWERS, makeAssessment } from '../../../../test/factories/assessments-rows.js'
import { makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'

describe('public assessment sessions (webhooks service)', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let publicKey: string
  let assessmentId: string
  beforeAll(async () => {
    app = await buildTestWebhooks(db.current)
    tenant = await makeTenant(db.current.sql)
    const a = await makeAssessment(db.current.sql, tenant)
    publicKey = a.publicKey
    assessmentId = a.id
  })
  afterAll(() => app.close())

  const start = (body: object = {}, key = publicKey) => app.inject({ method: 'POST', url: `/assessments/${key}/sessions`, payload: body })
  const answer = (token: string, questionId: string, value: unknown, responseMs = 1200) =>
    app.inject({ method: 'POST', url: `/assessments/sessions/${token}/answers`, payload: { questionId, value, responseMs } })
  const view = (token: string) => app.inject({ method: 'GET', url: `/assessments/sessions/${token}` })
  const back = (token: string) => app.inject({ method: 'POST', url: `/assessments/sessions/${token}/back` })
  const count = async (sql: string) => (await db.current.owner.unsafe<{ n: number }[]>(sql))[0]!.n
  async function answerAll(token: string, answers: Record<string, unknown> = HEALTHY_ANSWERS) {
    let state = (await view(token)).json()
    while (state.question) {
      const res = await answer(token, state.question.id, answers[state.question.id] ?? null)
      expect(res.statusCode, res.body).toBe(200)
      state = res.json()
    }
    return state
  }

  describe('happy path', () => {
    it('starts, asks in order, keeps progress, completes with the result and enqueues the analysis, once', async () => {
      const res = await start({ demographics: { age: 38, gender: 'female' } })
      expect(res.statusCode).toBe(201)
      const { token, state } = res.json()
      expect(token).toMatch(/^ast_[A-Za-z0-9_-]{43}$/)
      expect(state).toMatchObject({ status: 'in_progress', progress: 0, answered: 0, question: { id: 'sleep_hours', type: 'single_choice' }, canGoBack: false, missingProfile: [] })
      // The token is stored only as its hash.
      expect(await count(`select count(*)::int as n from assessments.sessions where token_hash = sha256('${token}'::bytea)`)).toBe(1)

      const after1 = (await answer(token, 'sleep_hours', 'h7_8')).json()
      expect(after1).toMatchObject({ progress: 7, answered: 1, question: { id: 'sleep_quality', type: 'scale', min: 1, max: 5 }, canGoBack: true })
      const done = await answerAll(token)
      expect(done).toMatchObject({ status: 'completed', progress: 100, question: null, result: { totalScore: expect.any(Number), band: expect.any(String), categoryScores: { sleep: expect.any(Number) } } })
      expect(done.result.recommendations.length).toBeGreaterThan(0)

      // Completing again is idempotent: the same result, no second job.
      const again = await app.inject({ method: 'POST', url: `/assessments/sessions/${token}/complete` })
      expect(again.statusCode).toBe(200)
      expect(again.json().result).toEqual(done.result)
      expect(await count(`select count(*)::int as n from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id
         where t.identifier = 'assessments__analyze_result' and j.payload->>'resultId' = '${done.result.id}' and j.payload->>'tenantId' = '${tenant.id}'`)).toBe(1)
      expect(await count(`select count(*)::int as n from analytics.events where name = 'assessment.completed' and properties->>'sessionId' = '${done.sessionId}'`)).toBe(1)
      expect(await count(`select count(*)::int as n from analytics.events where name = 'assessment.answered' and properties->>'sessionId' = '${done.sessionId}'`)).toBe(13)
    })

    it('goes back, keeps the earlier answer until it changes, and hides a conditional question again', async () => {
      const { token } = (await start({ demographics: { age: 50 } })).json()
      for (const [q, v] of [['sleep_hours', 'lt5'], ['sleep_quality', 2], ['exercise_days', 'd0'], ['activities', []], ['smoker', true]] as const) expect((await answer(token, q, v)).statusCode).toBe(200)
      expect((await view(token)).json().question.id).toBe('cigarettes')
      const b = (await back(token)).json()
      expect(b).toMatchObject({ question: { id: 'smoker' }, currentAnswer: true })
      const changed = (await answer(token, 'smoker', false)).json()
      expect(changed.question.id).toBe('alcohol')
    })

    it('resumes on another device from the token alone, at the same question', async () => {
      const { token } = (await start({ demographics: { age: 30 } })).json()
      await answer(token, 'sleep_hours', 'h5_6')
      await answer(token, 'sleep_quality', 3)
      // A second "device": nothing but the token.
      const elsewhere = await app.inject({ method: 'GET', url: `/assessments/sessions/${token}`, headers: { 'user-agent': 'other-phone' } })
      expect(elsewhere.json()).toMatchObject({ question: { id: 'exercise_days' }, answered: 2 })
    })

    it('waits for a required profile field and completes when it arrives', async () => {
      const { token } = (await start()).json()
      const state = await answerAll(token)
      expect(state).toMatchObject({ status: 'in_progress', question: null, missingProfile: [{ key: 'age' }] })
      expect((await app.inject({ method: 'POST', url: `/assessments/sessions/${token}/complete` })).statusCode).toBe(409)
      const res = await app.inject({ method: 'PUT', url: `/assessments/sessions/${token}/profile`, payload: { demographics: { age: 44, country: 'Portugal' } } })
      expect(res.json()).toMatchObject({ status: 'completed', demographics: { age: 44, country: 'Portugal' }, result: { band: expect.any(String) } })
    })
  })

  describe('errors', () => {
    it.each([
      ['an option not in the question', 'sleep_hours', 'h10', 400],
      ['a value of the wrong type', 'sleep_hours', 7, 400],
      ['a question that is not current', 'stress', 5, 409],
      ['a conditional question that is not shown', 'cigarettes', 10, 409],
      ['a question the assessment does not have', 'nope', 1, 409],
    ])('%s → %i, and changes nothing', async (_name, questionId, value, status) => {
      const { token } = (await start({ demographics: { age: 30 } })).json()
      const res = await answer(token, questionId, value)
      expect(res.statusCode).toBe(status)
      expect(res.json().error.code).toBe(status === 400 ? 'BAD_REQUEST' : 'CONFLICT')
      expect((await view(token)).json()).toMatchObject({ answered: 0, question: { id: 'sleep_hours' } })
    })

    it('refuses answers to a completed session (409) and going back from the first question (409)', async () => {
      const { token } = (await start({ demographics: { age: 30 } })).json()
      expect((await back(token)).statusCode).toBe(409)
      await answerAll(token)
      const res = await answer(token, 'sleep_hours', 'h7_8')
      expect(res.statusCode).toBe(409)
      expect(res.json().error.details).toEqual({ status: 'completed' })
    })

    it('takes a retried answer (the same answer to the question just answered) as the same answer, not a 409', async () => {
      const { token } = (await start({ demographics: { age: 30 } })).json()
      await answer(token, 'sleep_hours', 'h7_8')
      const retry = await answer(token, 'sleep_hours', 'h7_8')
      expect(retry.statusCode).toBe(200)
      expect(retry.json()).toMatchObject({ answered: 1, question: { id: 'sleep_quality' } })
      expect((await answer(token, 'sleep_hours', 'lt5')).statusCode).toBe(409)
    })

    it.each([
      ['unknown demographics', { demographics: { shoe_size: 42 } }, 400],
      ['a demographic out of range', { demographics: { age: 7 } }, 400],
      ['an unknown body key', { nope: 1 }, 400],
    ])('start with %s → %i', async (_name, body, status) => {
      expect((await start(body)).statusCode).toBe(status)
    })

    it('answers 404 for an unknown public key, a draft assessment and an archived one', async () => {
      const draft = await makeAssessment(db.current.sql, tenant, { draft: true })
      expect((await start({}, 'ak_unknownunknownunknownu')).statusCode).toBe(404)
      expect((await start({}, draft.publicKey)).statusCode).toBe(404)
      expect((await start({}, 'not-a-key')).statusCode).toBe(404)
    })
  })

  describe('security', () => {
    it('answers 404 for a token that is not one (guessed, malformed, another prefix) and leaks nothing', async () => {
      for (const token of ['ast_' + 'A'.repeat(43), 'obt_' + 'A'.repeat(43), 'x', 'ast_' + 'A'.repeat(42) + '!']) {
        const res = await view(token)
        expect(res.statusCode).toBe(404)
        expect(res.body).not.toContain('sleep_hours')
      }
    })

    it("keeps one tenant's sessions out of another's: the token is the only key, and it is per session", async () => {
      const other = await makeTenant(db.current.sql)
      const otherAssessment = await makeAssessment(db.current.sql, other)
      const mine = (await start({ demographics: { age: 30 } })).json()
      const theirs = (await start({ demographics: { age: 30 } }, otherAssessment.publicKey)).json()
      await answer(theirs.token, 'sleep_hours', 'lt5')
      expect((await view(mine.token)).json()).toMatchObject({ answered: 0 })
      const rows = await db.current.owner<{ tenantId: string; assessmentId: string }[]>`
        select tenant_id, assessment_id from assessments.sessions where id in (${mine.state.sessionId}, ${theirs.state.sessionId}) order by tenant_id = ${tenant.id} desc`
      expect(rows).toEqual([{ tenantId: tenant.id, assessmentId }, { tenantId: other.id, assessmentId: otherAssessment.id }])
    })

    it('keeps the token out of the access log path', async () => {
      const { redactUrl } = await import('../../../../lib/logger.js')
      expect(redactUrl('/assessments/sessions/ast_secret/answers')).toBe('/assessments/sessions/[redacted]/answers')
    })
  })
})
