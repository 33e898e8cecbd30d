import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { withTenant } from '../../../lib/db.js'
import type { App } from '../../../lib/http/create-server.js'
import { startAiEmulator, type AiEmulator } from '../../../ops/emulators/ai-provider.js'
import { bearer, buildTestApi, buildTestWebhooks, testConfig } from '../../../test/apps.js'
import { useTestDatabase } from '../../../test/db.js'
import { completeSessionOf, HEALTHY_ANSWERS, makeAssessment } from '../../../test/factories/assessments-rows.js'
import { makeLead } from '../../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../../test/factories/tenants.js'
import { drainJobs } from '../../../test/whatsapp.js'
import { openAiCompatibleProvider, ruleBasedProvider, type AnalysisProvider } from './providers.js'
import { analyzeResult, PatternInFlight, type AnalysisDeps } from './service.js'

const AI_KEY = 'sk-test-assessments'

describe('AI analysis of assessment results: cached by pattern, rate limited, the rules as default and fallback (the AI emulator, over HTTP)', () => {
  const db = useTestDatabase()
  let ai: AiEmulator
  let api: App
  let webhooks: App
  let tenant: TestTenant
  let assessmentId: string

  const provider = (): AnalysisProvider => openAiCompatibleProvider({ baseUrl: ai.baseUrl, apiKey: AI_KEY, model: 'gpt-test', timeoutMs: 2000 })
  const deps = (extra: Record<string, string> = {}, p: AnalysisProvider = provider()): AnalysisDeps => ({ sql: db.current.sql, provider: p, config: testConfig(extra) })
  const resultOf = async (sessionId: string) =>
    (await db.current.owner<{ id: string }[]>`select id from assessments.results where session_id = ${sessionId}`)[0]!.id
  /** A completed session with the healthy answers, some of them changed (a different pattern per distinct change). */
  const complete = async (changes: Record<string, unknown> = {}, extra: { leadId?: string; demographics?: Record<string, string | number> } = {}) => {
    const s = await completeSessionOf(db.current.sql, tenant, assessmentId, { ...HEALTHY_ANSWERS, ...changes }, extra)
    return { ...s, resultId: await resultOf(s.sessionId) }
  }
  const analysisOf = (resultId: string) => db.current.owner<{ source: string; fallbackReason: string | null; narrative: string; provider: string }[]>`
    select source, fallback_reason, narrative, provider from assessments.analyses where result_id = ${resultId}`.then((r) => r[0] ?? null)

  beforeAll(async () => {
    ai = await startAiEmulator({ apiKeys: [AI_KEY] })
    api = await buildTestApi(db.current)
    webhooks = await buildTestWebhooks(db.current)
    tenant = await makeTenant(db.current.sql)
    assessmentId = (await makeAssessment(db.current.sql, tenant)).id
  })
  afterAll(async () => {
    await api?.close()
    await webhooks?.close()
    await ai?.stop()
  })
  beforeEach(() => ai.reset())

  it('answers with the rules by default, through the job the completion enqueued; the participant sees it by token', async () => {
    const s = await complete()
    const pending = await webhooks.inject({ method: 'GET', url: `/assessments/sessions/${s.token}/analysis` })
    expect(pending.json()).toEqual({ status: 'pending', analysis: null })
    await drainJobs(db.current)
    const ready = (await webhooks.inject({ method: 'GET', url: `/assessments/sessions/${s.token}/analysis` })).json()
    expect(ready.status).toBe('ready')
    expect(ready.analysis).toMatchObject({ source: 'rules', fallbackReason: null, provider: 'rules', model: null })
    expect(ready.analysis.narrative).toMatch(/band/)
    // The same pattern again gives byte-for-byte the same text: the rules are deterministic.
    const again = await complete()
    await analyzeResult(deps({}, ruleBasedProvider), tenant.id, again.resultId)
    expect((await analysisOf(again.resultId))!.narrative).toBe(ready.analysis.narrative)
    expect(ai.completions).toEqual([])
  })

  it('asks the provider once per pattern: the second identical pattern is a cache hit, a different one asks again', async () => {
    const first = await complete({ mood: 'low' }, { demographics: { age: 44 } })
    const second = await complete({ mood: 'low' }, { demographics: { age: 47 } }) // the same decade: the same pattern
    const other = await complete({ mood: 'great' }, { demographics: { age: 44 } })
    expect(await analyzeResult(deps(), tenant.id, first.resultId)).toBe('provider')
    expect(await analyzeResult(deps(), tenant.id, second.resultId)).toBe('cache')
    expect(await analyzeResult(deps(), tenant.id, other.resultId)).toBe('provider')
    expect(await analyzeResult(deps(), tenant.id, first.resultId)).toBe('exists')
    expect(ai.completions.map((c) => c.status)).toEqual([200, 200])
    const a = await analysisOf(first.resultId)
    const b = await analysisOf(second.resultId)
    expect(a).toMatchObject({ source: 'provider', provider: 'openai-compatible' })
    expect(b).toMatchObject({ source: 'cache', provider: 'openai-compatible', narrative: a!.narrative })
    expect(a!.narrative).toMatch(/^\[emulated/)
    const [entry] = await db.current.owner<{ hits: number }[]>`select hits from assessments.analysis_cache where tenant_id = ${tenant.id} and status = 'ready' order by created_at limit 1`
    expect(entry!.hits).toBe(1)
  })

  it('sends the provider banded answers only: no free text, no raw numbers, no names', async () => {
    const lead = await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id, { name: 'Beatriz Moreira', email: 'bia@example.com' }))
    const s = await complete({ goals: 'My neighbour Carla says I snore', weight_kg: 93.7, stress: 9 }, { leadId: lead.id, demographics: { age: 52 } })
    await analyzeResult(deps(), tenant.id, s.resultId)
    const prompt = ai.completions.map((c) => `${c.system}\n${c.user}`).join('\n')
    expect(prompt).toContain('Result band:')
    for (const secret of ['Carla', 'snore', '93.7', 'Beatriz', 'bia@example.com', lead.id, s.sessionId, '52']) expect(prompt).not.toContain(secret)
    expect(prompt).toContain('50-59')
  })

  it('falls back to the rules when the provider fails or answers something else, and frees the pattern for the next one', async () => {
    const s1 = await complete({ water: 'w1_3' })
    ai.failNext(500)
    expect(await analyzeResult(deps(), tenant.id, s1.resultId)).toBe('rules')
    expect(await analysisOf(s1.resultId)).toMatchObject({ source: 'rules', fallbackReason: expect.stringMatching(/^provider_error: AI provider answered 500/) })
    const s2 = await complete({ water: 'w1_3' })
    ai.garbleNext()
    expect(await analyzeResult(deps(), tenant.id, s2.resultId)).toBe('rules')
    expect((await analysisOf(s2.resultId))!.fallbackReason).toMatch(/did not answer the JSON object/)
    const s3 = await complete({ water: 'w1_3' })
    expect(await analyzeResult(deps(), tenant.id, s3.resultId)).toBe('provider')
    const calls = await db.current.owner<{ outcome: string }[]>`select outcome from assessments.ai_calls where session_id in ${db.current.owner([s1.sessionId, s2.sessionId, s3.sessionId])} order by id`
    expect(calls.map((c) => c.outcome)).toEqual(['error', 'error', 'ok'])
  })

  it('holds the participant limit exactly when many analyses of one lead run at once, and the tenant budget too', async () => {
    const lead = await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id))
    // Twelve different patterns (age decade × gender), so no analysis waits for another's.
    const sessions = []
    for (const age of [20, 30, 40, 50, 60, 70]) for (const gender of ['female', 'male']) sessions.push(await complete({ fruit_veg: 'p0_1' }, { leadId: lead.id, demographics: { age, gender } }))
    const d = deps({ AI_RATE_LIMIT_PER_HOUR: '5' })
    const outcomes = await Promise.all(sessions.map((s) => analyzeResult(d, tenant.id, s.resultId)))
    expect(outcomes.filter((o) => o === 'provider')).toHaveLength(5)
    expect(outcomes.filter((o) => o === 'rules')).toHaveLength(sessions.length - 5)
    expect(ai.completions).toHaveLength(5)
    const limited = await db.current.owner<{ n: number }[]>`
      select count(*)::int as n from assessments.analyses where fallback_reason like 'rate_limited:%' and session_id in ${db.current.owner(sessions.map((s) => s.sessionId))}`
    expect(limited[0]!.n).toBe(sessions.length - 5)

    // The tenant's own budget: one call an hour, already spent by now.
    const put = await api.inject({ method: 'PUT', url: '/v1/assessment-ai/settings', headers: bearer(tenant.adminKey), payload: { enabled: true, callsPerHour: 1 } })
    expect(put.statusCode).toBe(200)
    const s = await complete({ alcohol: 'daily' })
    expect(await analyzeResult(deps(), tenant.id, s.resultId)).toBe('rules')
    expect((await analysisOf(s.resultId))!.fallbackReason).toMatch(/^budget_exhausted/)
    await api.inject({ method: 'PUT', url: '/v1/assessment-ai/settings', headers: bearer(tenant.adminKey), payload: { enabled: false, callsPerHour: null } })
    const off = await complete({ alcohol: 'weekly' })
    expect(await analyzeResult(deps(), tenant.id, off.resultId)).toBe('rules')
    expect((await analysisOf(off.resultId))!.fallbackReason).toBe('disabled by the tenant')
    await api.inject({ method: 'PUT', url: '/v1/assessment-ai/settings', headers: bearer(tenant.adminKey), payload: { enabled: true } })
  })

  it('asks once when identical patterns arrive together: the others wait for it (PatternInFlight) and then hit the cache', async () => {
    const other = await makeTenant(db.current.sql)
    const aid = (await makeAssessment(db.current.sql, other)).id
    const sessions = []
    for (let i = 0; i < 4; i++) {
      const s = await completeSessionOf(db.current.sql, other, aid, { ...HEALTHY_ANSWERS, mood: 'ok' }, {})
      sessions.push({ ...s, resultId: await resultOf(s.sessionId) })
    }
    ai.setLatency(300)
    const settled = await Promise.allSettled(sessions.map((s) => analyzeResult(deps(), other.id, s.resultId)))
    expect(settled.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<string>).value)).toEqual(['provider'])
    expect(settled.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof PatternInFlight)).toBe(true)
    ai.setLatency(0)
    // The retries graphile-worker would make:
    const retried = []
    for (const s of sessions) retried.push(await analyzeResult(deps(), other.id, s.resultId))
    expect(retried.sort()).toEqual(['cache', 'cache', 'cache', 'exists'])
    expect(ai.completions).toHaveLength(1)
    const sources = await db.current.owner<{ source: string }[]>`select source from assessments.analyses where tenant_id = ${other.id} order by source`
    expect(sources.map((r) => r.source)).toEqual(['cache', 'cache', 'cache', 'provider'])
  })

  it("shows an admin a result's analysis and the overview; another tenant's result is 404; bad settings are 400", async () => {
    const s = await complete({ exercise_days: 'd0' })
    await analyzeResult(deps({}, ruleBasedProvider), tenant.id, s.resultId)
    const res = await api.inject({ method: 'GET', url: `/v1/assessment-ai/results/${s.resultId}/analysis?assessmentId=${assessmentId}`, headers: bearer(tenant.adminKey) })
    expect(res.statusCode).toBe(200)
    expect(res.json().analysis.source).toBe('rules')
    const stranger = await makeTenant(db.current.sql)
    const hidden = await api.inject({ method: 'GET', url: `/v1/assessment-ai/results/${s.resultId}/analysis?assessmentId=${assessmentId}`, headers: bearer(stranger.adminKey) })
    expect(hidden.statusCode).toBe(404)
    const overview = (await api.inject({ method: 'GET', url: '/v1/assessment-ai/settings', headers: bearer(tenant.adminKey) })).json()
    expect(overview).toMatchObject({ provider: { name: 'rules' }, participantCallsPerHour: 50, cacheTtlSeconds: 3600 })
    for (const payload of [{ enabled: 'yes' }, { enabled: true, callsPerHour: -1 }, { enabled: true, extra: 1 }]) {
      const bad = await api.inject({ method: 'PUT', url: '/v1/assessment-ai/settings', headers: bearer(tenant.adminKey), payload })
      expect(bad.statusCode, JSON.stringify(payload)).toBe(400)
    }
    const strangerView = (await api.inject({ method: 'GET', url: '/v1/assessment-ai/settings', headers: bearer(stranger.adminKey) })).json()
    expect(strangerView.cache.entries).toBe(0)
  })
})
