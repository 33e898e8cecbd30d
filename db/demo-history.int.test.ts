import { describe, expect, it } from 'vitest'
import { useTestDatabase } from '../test/db.js'
import { DEMO_TENANT_ID, generateDemoHistory } from './demo-history.js'
import { runSeeds } from './seed.js'

const counts = async (db: ReturnType<typeof useTestDatabase>['current']) => {
  const [row] = await db.owner<{ events: number; leads: number; qualified: number; converted: number }[]>`
    select (select count(*)::int from analytics.events where tenant_id = ${DEMO_TENANT_ID}) as events,
           (select count(*)::int from marketing.leads where tenant_id = ${DEMO_TENANT_ID}) as leads,
           (select count(*)::int from marketing.leads where tenant_id = ${DEMO_TENANT_ID} and status = 'qualified') as qualified,
           (select count(*)::int from marketing.leads where tenant_id = ${DEMO_TENANT_ID} and status = 'converted') as converted`
  return row!
}

describe('the demo analytics seed', () => {
  const db = useTestDatabase()

  it('records thirty days of history once, and adds nothing when run again', async () => {
    await runSeeds(db.current.ownerUrl, { onlyNew: false })
    const first = await counts(db.current)
    await runSeeds(db.current.ownerUrl, { onlyNew: false })
    const second = await counts(db.current)
    expect(second).toEqual(first)
    // The SQL seeds add two leads of their own; every other lead and every event is the history's.
    const [span] = await db.current.owner<{ days: number; names: number; future: number }[]>`
      select count(distinct date_trunc('day', occurred_at at time zone 'America/Sao_Paulo'))::int as days,
             count(distinct name)::int as names, count(*) filter (where occurred_at > now())::int as future
        from analytics.events where tenant_id = ${DEMO_TENANT_ID} and source is distinct from 'assessments'`
    // (The assessments seed's sessions record their own assessment.* events, today.)
    expect(span).toEqual({ days: 30, names: 15, future: 0 })
    expect(first.events).toBeGreaterThan(10_000)
    expect(first.leads).toBeGreaterThan(500)
    expect(first.qualified + first.converted).toBeGreaterThan(100)
  }, 120_000) // two full seeds of ~15,000 events: seconds alone, much longer on a busy machine

  it('generates the same events for the same day, and only the past', () => {
    const now = new Date('2026-03-10T15:00:00Z')
    const a = generateDemoHistory({ now })
    const b = generateDemoHistory({ now: new Date(now.getTime() + 3_600_000) })
    expect(a.events.every((e) => e.occurredAt <= now)).toBe(true)
    const keysA = a.events.map((e) => `${e.dedupeKey}|${e.leadKey}|${e.occurredAt.toISOString()}`)
    const keysB = new Set(b.events.map((e) => `${e.dedupeKey}|${e.leadKey}|${e.occurredAt.toISOString()}`))
    expect(keysA.every((k) => keysB.has(k))).toBe(true)
    expect(b.events.length).toBeGreaterThan(a.events.length)
    expect(new Set(keysA).size).toBe(keysA.length)
  })
})
