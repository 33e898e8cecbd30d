import { beforeAll, describe, expect, it } from 'vitest'
import { sha256 } from '../../lib/crypto.js'
import { isAppError } from '../../lib/errors.js'
import { crontab } from '../../services/workers/crontab.js'
import { useTestDatabase } from '../../test/db.js'
import { completeSessionOf, makeAssessment } from '../../test/factories/assessments-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { abandonIdleSessions } from './abandonment.js'
import { answerBatch, startWebSession, viewWebSession } from './service.js'

const DAY = 24 * 3600 * 1000

describe('abandoning idle assessment sessions', () => {
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
  const idleFor = (sessionId: string, ms: number) =>
    db.current.owner`update assessments.sessions set started_at = now() - ${ms} * interval '1 millisecond' - interval '1 minute',
                                                      last_activity_at = now() - ${ms} * interval '1 millisecond' where id = ${sessionId}`
  const sessionRow = async (id: string) =>
    (await db.current.owner<{ status: string; abandonedAt: Date | null; resumedCount: number; currentQuestionId: string }[]>`
      select status, abandoned_at, resumed_count, current_question_id from assessments.sessions where id = ${id}`)[0]!
  const events = (name: string, sessionId: string) =>
    db.current.owner<{ tenantId: string; properties: Record<string, unknown> }[]>`
      select tenant_id, properties from analytics.events where name = ${name} and properties->>'sessionId' = ${sessionId} order by id`
  const run = () => abandonIdleSessions(db.current.sql, { idleMs: DAY, batch: 1 })

  it('marks idle sessions of every tenant abandoned in batches, each with one event; active and completed ones stay', async () => {
    const idleA = await start(keyA)
    const idleB = await start(keyB)
    const active = await start(keyA)
    const done = await completeSessionOf(db.current.sql, a, assessmentA)
    await idleFor(idleA.state.sessionId, DAY + 60_000)
    await idleFor(idleB.state.sessionId, 2 * DAY)
    await idleFor(active.state.sessionId, DAY - 60_000)
    await idleFor(done.sessionId, 3 * DAY)

    const first = await run()
    expect(first).toMatchObject({ abandoned: 2, incomplete: false })
    expect(first.batches).toBe(3) // batch 1: one each, then one that finds nothing
    for (const s of [idleA, idleB]) expect(await sessionRow(s.state.sessionId)).toMatchObject({ status: 'abandoned', abandonedAt: expect.any(Date) })
    expect((await sessionRow(active.state.sessionId)).status).toBe('in_progress')
    expect((await sessionRow(done.sessionId)).status).toBe('completed')
    expect(await events('assessment.abandoned', idleA.state.sessionId)).toEqual([
      { tenantId: a.id, properties: expect.objectContaining({ sessionId: idleA.state.sessionId, questionId: 'sleep_hours', progress: 0, channel: 'web', idleSeconds: expect.any(Number) }) },
    ])
    expect((await events('assessment.abandoned', idleB.state.sessionId)).map((e) => e.tenantId)).toEqual([b.id])

    // Again: nothing is idle and in progress any more.
    expect(await run()).toMatchObject({ abandoned: 0 })
    expect(await events('assessment.abandoned', idleA.state.sessionId)).toHaveLength(1)
  })

  it('reopens a session when its participant answers again; viewing or a refused answer does not', async () => {
    const s = await start(keyA)
    await idleFor(s.state.sessionId, 2 * DAY)
    await run()
    expect((await viewWebSession(db.current.sql, s.token)).status).toBe('abandoned')
    const [refused] = await answerBatch(db.current.sql, [{ tokenHash: sha256(s.token), body: { questionId: 'sleep_hours', value: 'h99' } }])
    expect(isAppError(refused) && refused.code).toBe('BAD_REQUEST')
    expect(await sessionRow(s.state.sessionId)).toMatchObject({ status: 'abandoned', resumedCount: 0 })

    const [ok] = await answerBatch(db.current.sql, [{ tokenHash: sha256(s.token), body: { questionId: 'sleep_hours', value: 'h7_8' } }])
    expect(ok).toMatchObject({ status: 'in_progress', answered: 1, question: { id: 'sleep_quality' } })
    expect(await sessionRow(s.state.sessionId)).toMatchObject({ status: 'in_progress', resumedCount: 1, currentQuestionId: 'sleep_quality', abandonedAt: expect.any(Date) })
    expect((await events('assessment.resumed', s.state.sessionId)).map((e) => e.properties.resumedCount)).toEqual([1])

    // Idle again: abandoned again, but the abandoned event stays the first one's (a session counts once).
    await idleFor(s.state.sessionId, 2 * DAY)
    expect(await run()).toMatchObject({ abandoned: 1 })
    expect((await sessionRow(s.state.sessionId)).status).toBe('abandoned')
    expect(await events('assessment.abandoned', s.state.sessionId)).toHaveLength(1)
  })

  it('skips a session an answer holds locked', async () => {
    const s = await start(keyA)
    await idleFor(s.state.sessionId, 2 * DAY)
    let release!: () => void
    const held = new Promise<void>((r) => { release = r })
    let locked!: () => void
    const isLocked = new Promise<void>((r) => { locked = r })
    const holder = db.current.owner.begin(async (tx) => {
      await tx`select 1 from assessments.sessions where id = ${s.state.sessionId} for update`
      locked()
      await held
    })
    await isLocked
    expect(await run()).toMatchObject({ abandoned: 0 })
    release()
    await holder
    expect(await run()).toMatchObject({ abandoned: 1 })
  })

  it('runs from the crontab every 5 minutes, with an id', () => {
    expect(crontab).toContain('*/5 * * * * assessments__abandon_idle_sessions ?id=assessments_abandon_idle&max=1')
  })
})
