import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../../../lib/http/create-server.js'
import { HEALTH_DEFINITION } from '../../../../domains/assessments/sample-definitions.js'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { completeSessionOf, HEALTHY_ANSWERS } from '../../../../test/factories/assessments-rows.js'
import { runJobs } from '../../../../test/factories/conversations-rows.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x))

describe('assessments API', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let other: TestTenant
  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
  })
  afterAll(() => app.close())

  const call = (method: 'GET' | 'POST' | 'PATCH' | 'PUT', url: string, payload?: unknown, key = tenant.adminKey) =>
    app.inject({ method, url: `/v1/assessments${url}`, headers: bearer(key), ...(payload === undefined ? {} : { payload: payload as object }) })
  let n = 0
  const create = (definition: unknown = HEALTH_DEFINITION, key = tenant.adminKey) => call('POST', '', { key: `health_${++n}`, type: 'health', name: 'Health check', definition }, key)

  describe('happy path', () => {
    it('creates a draft, publishes it (frozen from then on), and starts version 2 as a new draft', async () => {
      const res = await create()
      expect(res.statusCode).toBe(201)
      const a = res.json()
      expect(a).toMatchObject({ status: 'draft', publishedVersion: null, publicKey: expect.stringMatching(/^ak_/), versions: [{ version: 1, publishedAt: null, issues: [] }] })
      const pub = await call('POST', `/${a.id}/publish`)
      expect(pub.statusCode, pub.body).toBe(200)
      expect(pub.json()).toMatchObject({ assessment: { status: 'published', publishedVersion: 1, rubricVersion: 1 }, version: { version: 1, rubricVersion: 1 }, rescoringRun: null })
      // The published row cannot change, not even by its owner.
      await expect(db.current.owner`update assessments.assessment_versions set rubric = '{}' where id = ${pub.json().version.id}`).rejects.toThrow(/immutable/)
      const d2 = clone(HEALTH_DEFINITION)
      d2.questions[0]!.text = 'How many hours do you usually sleep?'
      const draft = await call('PUT', `/${a.id}/draft`, { definition: d2 })
      expect(draft.json()).toMatchObject({ version: 2, publishedAt: null })
      const detail = (await call('GET', `/${a.id}`)).json()
      expect(detail.versions.map((v: { version: number }) => v.version)).toEqual([2, 1])
      expect(detail.versions[1].questions[0].text).toBe(HEALTH_DEFINITION.questions[0]!.text)
    })

    it('re-scores completed sessions when a new rubric is published, keeping each result\'s history', async () => {
      const a = (await create()).json()
      await call('POST', `/${a.id}/publish`)
      const s1 = await completeSessionOf(db.current.sql, tenant, a.id)
      const s2 = await completeSessionOf(db.current.sql, tenant, a.id, { ...HEALTHY_ANSWERS, smoker: true, cigarettes: 30 })
      const before = await db.current.owner<{ sessionId: string; totalScore: number; band: string }[]>`
        select session_id, total_score::float8 as total_score, band from assessments.results where assessment_id = ${a.id} order by session_id`

      const d2 = clone(HEALTH_DEFINITION)
      d2.rubric!.bands = [{ key: 'low', label: 'Low', min: 0 }, { key: 'high', label: 'High', min: 50 }]
      d2.rubric!.total = 'round(c.sleep * 0.5 + c.mind * 0.5, 1)'
      await call('PUT', `/${a.id}/draft`, { definition: d2 })
      const pub = (await call('POST', `/${a.id}/publish`)).json()
      expect(pub).toMatchObject({ assessment: { rubricVersion: 2 }, rescoringRun: { status: 'running', reason: 'publish', rubricVersion: 2 } })
      await runJobs(db.current, 'http://127.0.0.1:9')
      const run = (await call('GET', `/${a.id}/rescoring-runs/${pub.rescoringRun.id}`)).json()
      expect(run).toMatchObject({ status: 'completed', rescored: 2, skipped: 0 })
      const after = await db.current.owner<{ sessionId: string; band: string; rubricVersion: number; id: string }[]>`
        select session_id, band, rubric_version, id from assessments.results where assessment_id = ${a.id} order by session_id`
      expect(after.map((r) => r.rubricVersion)).toEqual([2, 2])
      expect(after.every((r) => ['low', 'high'].includes(r.band))).toBe(true)
      const result = (await call('GET', `/${a.id}/results/${after[0]!.id}`)).json()
      expect(result.history).toEqual([expect.objectContaining({ rubricVersion: 1, totalScore: before[0]!.totalScore, band: before[0]!.band })])
      // The sessions stay on the version they started on.
      expect((await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.sessions s join assessments.assessment_versions v on v.id = s.version_id where s.id in (${s1.sessionId}, ${s2.sessionId}) and v.version = 1`)[0]!.n).toBe(2)

      // An explicit re-score with an unchanged rubric changes nothing and writes no history.
      const again = await call('POST', `/${a.id}/rescore`, {})
      expect(again.statusCode).toBe(202)
      await runJobs(db.current, 'http://127.0.0.1:9')
      expect((await call('GET', `/${a.id}/rescoring-runs/${again.json().id}`)).json()).toMatchObject({ status: 'completed', rescored: 0, unchanged: 2 })
      expect((await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.result_history where result_id = ${after[0]!.id}`)[0]!.n).toBe(1)
    })

    it('reports starts, completions, median time, score distribution and drop-off per question', async () => {
      const a = (await create()).json()
      await call('POST', `/${a.id}/publish`)
      await completeSessionOf(db.current.sql, tenant, a.id)
      await completeSessionOf(db.current.sql, tenant, a.id, { ...HEALTHY_ANSWERS, sleep_hours: 'lt5', mood: 'low' })
      // One stopped at the third question.
      await completeSessionOf(db.current.sql, tenant, a.id, { sleep_hours: 'h7_8', sleep_quality: 3, exercise_days: 'not-an-option' }).catch(() => undefined)
      const { startSession, sessionContext, answerQuestion } = await import('../../../../domains/assessments/service.js')
      const { withTenant } = await import('../../../../lib/db.js')
      await withTenant(db.current.sql, tenant.id, async (tx) => {
        const s = await startSession(tx, { assessmentId: a.id, channel: 'whatsapp' })
        let ctx = await sessionContext(tx, s.session)
        ctx = await answerQuestion(tx, ctx, { questionId: 'sleep_hours', value: 'h5_6', responseMs: 4000 })
        await answerQuestion(tx, ctx, { questionId: 'sleep_quality', value: 2, responseMs: 2000 })
      })
      const report = (await call('GET', `/${a.id}/report`)).json()
      expect(report).toMatchObject({ starts: 3, completions: 2, completionRate: 0.6667, byChannel: { web: { starts: 2, completions: 2 }, whatsapp: { starts: 1, completions: 0 } } })
      expect(report.medianSecondsToComplete).toEqual(expect.any(Number))
      expect(report.scoreDistribution.buckets.reduce((s: number, b: { sessions: number }) => s + b.sessions, 0)).toBe(2)
      const q3 = report.questions.find((x: { questionId: string }) => x.questionId === 'exercise_days')
      expect(q3).toMatchObject({ reached: 3, answered: 2, stoppedHere: 1, dropOffRate: 0.3333 })
      expect(report.questions.find((x: { questionId: string }) => x.questionId === 'sleep_hours')).toMatchObject({ answered: 3, stoppedHere: 0, medianResponseMs: 1500 })
    })
  })

  describe('errors', () => {
    const withRubric = (patch: (d: typeof HEALTH_DEFINITION) => void) => {
      const d = clone(HEALTH_DEFINITION)
      patch(d)
      return d
    }
    it.each([
      ['a formula dividing by a question that can be 0', withRubric((d) => { d.rubric!.formulas!.push({ key: 'bad', expr: '100 / q.exercise_days' }) }), 'can divide by zero when q.exercise_days = 0'],
      ['a formula dividing by literal 0', withRubric((d) => { d.rubric!.total = 'c.sleep / 0' }), 'can divide by zero'],
      ['an unknown question in a formula', withRubric((d) => { d.rubric!.total = 'q.shoe_size * 2' }), 'unknown question q.shoe_size'],
      ['a condition on a later question', withRubric((d) => { d.questions[0]!.showIf = { question: 'mood', equals: 'low' } }), '"mood" is not an earlier question'],
    ])('publishing %s → 400, nothing published', async (_name, definition, message) => {
      const a = (await create(definition)).json()
      expect(a.versions[0].issues).toContainEqual(expect.objectContaining({ message: expect.stringContaining(message) }))
      const res = await call('POST', `/${a.id}/publish`)
      expect(res.statusCode).toBe(400)
      expect(res.json().error.details).toContainEqual(expect.objectContaining({ message: expect.stringContaining(message) }))
      expect((await call('GET', `/${a.id}`)).json()).toMatchObject({ status: 'draft', publishedVersion: null })
    })

    it.each([
      ['a choice question without options', withRubric((d) => { delete (d.questions[0] as { options?: unknown }).options }), 201],
      ['an unknown question type', withRubric((d) => { (d.questions[0] as { type: string }).type = 'slider' }), 400],
      ['no bands', withRubric((d) => { d.rubric!.bands = [] }), 400],
      ['an unknown key', { ...clone(HEALTH_DEFINITION), extra: 1 }, 400],
    ])('creating with %s → %i', async (_name, definition, status) => {
      expect((await create(definition)).statusCode).toBe(status)
    })

    it('answers 409 to publishing without a draft, and 404 for an unknown assessment', async () => {
      const a = (await create()).json()
      await call('POST', `/${a.id}/publish`)
      expect((await call('POST', `/${a.id}/publish`)).statusCode).toBe(409)
      expect((await call('GET', '/00000000-0000-4000-8000-000000000000')).statusCode).toBe(404)
      expect((await call('GET', '/not-a-uuid')).statusCode).toBe(400)
    })
  })

  describe('security', () => {
    it("refuses another tenant's assessments (404) and read-only keys' writes (403)", async () => {
      const a = (await create()).json()
      for (const [method, url] of [['GET', `/${a.id}`], ['GET', `/${a.id}/report`], ['POST', `/${a.id}/publish`], ['POST', `/${a.id}/rescore`]] as const) {
        const res = await call(method, url, method === 'POST' ? {} : undefined, other.adminKey)
        expect(res.statusCode, `${method} ${url}`).toBe(404)
      }
      expect((await call('PUT', `/${a.id}/draft`, { definition: HEALTH_DEFINITION }, other.adminKey)).statusCode).toBe(404)
      expect((await call('GET', '', undefined, other.adminKey)).json().data.map((x: { id: string }) => x.id)).not.toContain(a.id)
      const readOnly = await makeApiKey(db.current.sql, tenant)
      expect((await call('POST', `/${a.id}/publish`, {}, readOnly.key)).statusCode).toBe(403)
      expect((await app.inject({ method: 'GET', url: '/v1/assessments' })).statusCode).toBe(401)
    })
  })
})
