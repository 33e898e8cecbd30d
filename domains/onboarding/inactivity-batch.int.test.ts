import { describe, expect, it } from 'vitest'
import { SecretBox } from '../../lib/crypto.js'
import { testConfig } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { foldPendingViews, runInactivityBatch, saveStep, startSession, viewSession, type OnboardingDeps } from './service.js'

const secrets = SecretBox.fromConfig(testConfig().SECRETS_KEY)
const NUDGE = 1_800_000
const ABANDON = 7_200_000
const BUSINESS = { businessName: 'Clinic', country: 'BR', timezone: 'America/Sao_Paulo', industry: 'dental', contactEmail: 'o@clinic.example', contactPhone: '+5511999990000' }

/** The inactivity batch (claim with skip locked, decide, apply set-based) and the append-only views it folds. */
describe('onboarding inactivity in batches, and views folded later', () => {
  const db = useTestDatabase()
  const deps = (): OnboardingDeps => ({ sql: db.current.sql, secrets, graph: null, settings: { tokenTtlMs: 86_400_000, nudgeAfterMs: NUDGE, abandonAfterMs: ABANDON, publicUrl: 'https://onboard.example' } })
  const drain = async (now: Date, lanes: number, limit: number) => {
    const runs = await Promise.all(Array.from({ length: lanes }, async () => {
      let total = 0
      for (let claimed = limit; claimed > 0;) {
        const c = await runInactivityBatch(deps(), { now, limit })
        claimed = c.claimed
        total += c.nudged + c.abandoned
      }
      return total
    }))
    return runs.reduce((a, b) => a + b, 0)
  }
  const kinds = (ids: string[], kind: string) => db.current.owner<{ sessionId: string; n: number }[]>`
    select session_id, count(*)::int as n from onboarding.step_activities where session_id = any (${ids}::uuid[]) and kind = ${kind} group by session_id`

  it('nudges then abandons each of 300 due sessions exactly once, with batches claiming side by side', async () => {
    const started = await Promise.all(Array.from({ length: 300 }, () => startSession(deps(), { origin: 'signup', createdBy: 'test' })))
    const ids = started.map((s) => s.session.sessionId)
    expect(await drain(new Date(Date.now() + NUDGE + 60_000), 3, 40)).toBe(300)
    const nudged = await kinds(ids, 'nudged')
    expect(nudged).toHaveLength(300)
    expect(nudged.every((r) => r.n === 1)).toBe(true)
    const [hooks] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from onboarding.webhook_events where session_id = any (${ids}::uuid[]) and type = 'onboarding.nudge'`
    expect(hooks!.n).toBe(300)
    // Due again at abandonAfter after the last activity, not before.
    expect(await drain(new Date(Date.now() + NUDGE + 120_000), 2, 40)).toBe(0)
    expect(await drain(new Date(Date.now() + ABANDON + 60_000), 3, 40)).toBe(300)
    const abandoned = await kinds(ids, 'abandoned')
    expect(abandoned.every((r) => r.n === 1) && abandoned.length === 300).toBe(true)
    const [left] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from onboarding.sessions where id = any (${ids}::uuid[]) and (status <> 'abandoned' or idle_check_at is not null)`
    expect(left!.n).toBe(0)
  })

  it('records every view as one step activity and one analytics event, once, at the time it was seen', async () => {
    const { session, link } = await startSession(deps(), { origin: 'signup', createdBy: 'test' })
    const info = await saveStep(deps(), link.token, 'business_info', BUSINESS)
    const tenantId = info.session.tenantId!
    const views = await Promise.all(Array.from({ length: 20 }, () => viewSession(deps(), link.token)))
    expect(views.every((v) => v.sessionId === session.sessionId && v.currentStep === 'whatsapp_connect')).toBe(true)
    // Appended, not yet filed: a view writes one row and locks nothing.
    const pending = await db.current.owner<{ viewedAt: Date }[]>`select viewed_at from onboarding.session_views where session_id = ${session.sessionId} order by id`
    expect(pending).toHaveLength(20)
    expect(await kinds([session.sessionId], 'viewed')).toEqual([])

    expect(await foldPendingViews(deps())).toBeGreaterThanOrEqual(1)
    const filed = await db.current.owner<{ step: string; createdAt: Date }[]>`
      select step, created_at from onboarding.step_activities where session_id = ${session.sessionId} and kind = 'viewed' order by created_at`
    expect(filed.map((a) => a.createdAt.getTime())).toEqual(pending.map((p) => p.viewedAt.getTime()).sort((a, b) => a - b))
    expect(filed.every((a) => a.step === 'whatsapp_connect')).toBe(true)
    const [after] = await db.current.owner<{ lastActivityAt: Date; left: number }[]>`
      select last_activity_at, (select count(*)::int from onboarding.session_views where session_id = s.id) as left from onboarding.sessions s where id = ${session.sessionId}`
    expect(after).toEqual({ lastActivityAt: pending.at(-1)!.viewedAt, left: 0 })
    await foldPendingViews(deps())
    const [events] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from analytics.events where tenant_id = ${tenantId} and name = 'onboarding.step_viewed'`
    expect(events!.n).toBe(20)
  })

  it('counts a view not yet folded as activity: the batch folds it first and does not nudge', async () => {
    const { session, link } = await startSession(deps(), { origin: 'signup', createdBy: 'test' })
    const [row] = await db.current.owner<{ lastActivityAt: Date }[]>`select last_activity_at from onboarding.sessions where id = ${session.sessionId}`
    await new Promise((r) => setTimeout(r, 50))
    await viewSession(deps(), link.token)
    // Due by the start, not by the view (50 ms later).
    const c = await runInactivityBatch(deps(), { now: new Date(row!.lastActivityAt.getTime() + NUDGE + 10), only: [session.sessionId] })
    expect(c).toMatchObject({ claimed: 1, nudged: 0, rescheduled: 1 })
    expect(await kinds([session.sessionId], 'viewed')).toMatchObject([{ n: 1 }])
  })

  it('resumes a session abandoned while a view of it was still pending, when the view is folded', async () => {
    const { session } = await startSession(deps(), { origin: 'signup', createdBy: 'test' })
    expect(await runInactivityBatch(deps(), { now: new Date(Date.now() + ABANDON + 1000), only: [session.sessionId] })).toMatchObject({ abandoned: 1 })
    // The batch ran at a later time; the view came a second after the abandonment (appended just as it committed).
    await db.current.owner`
      insert into onboarding.session_views (session_id, step, viewed_at)
      select id, 'business_info', abandoned_at + interval '1 second' from onboarding.sessions where id = ${session.sessionId}`
    await foldPendingViews(deps())
    const [s] = await db.current.owner<{ status: string; resumedCount: number; idle: boolean }[]>`
      select status, resumed_count, idle_check_at is not null as idle from onboarding.sessions where id = ${session.sessionId}`
    expect(s).toEqual({ status: 'in_progress', resumedCount: 1, idle: true })
    const history = await db.current.owner<{ kind: string }[]>`select kind from onboarding.step_activities where session_id = ${session.sessionId} order by created_at, id`
    expect(history.map((h) => h.kind)).toEqual(['started', 'abandoned', 'viewed', 'resumed'])
  })
})
