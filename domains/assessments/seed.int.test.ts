import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSeeds } from '../../db/seed.js'
import { DEMO_TENANT_ID } from '../../db/demo-history.js'
import type { App } from '../../lib/http/create-server.js'
import { buildTestWebhooks } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { assessmentReport } from './report.js'

describe('the demo assessments seed', () => {
  const db = useTestDatabase()
  let webhooks: App
  beforeAll(async () => {
    await runSeeds(db.current.ownerUrl, { onlyNew: false })
    webhooks = await buildTestWebhooks(db.current)
  })
  afterAll(() => webhooks.close())

  it('publishes a health and a wealth assessment with completed, scored sessions, and seeding again adds nothing', async () => {
    const rows = await db.current.owner<{ key: string; type: string; sessions: number; completed: number; results: number }[]>`
      select a.key, a.type, count(s.*)::int as sessions, count(*) filter (where s.status = 'completed')::int as completed,
             (select count(*)::int from assessments.results r where r.assessment_id = a.id) as results
        from assessments.assessments a left join assessments.sessions s on s.assessment_id = a.id
       where a.tenant_id = ${DEMO_TENANT_ID} group by a.id order by a.key`
    expect(rows.map((r) => [r.key, r.type])).toEqual([['health_check', 'health'], ['wealth_check', 'wealth']])
    for (const r of rows) {
      expect(r.sessions).toBe(30)
      expect(r.completed).toBeGreaterThan(15)
      expect(r.results).toBe(r.completed)
    }
    await runSeeds(db.current.ownerUrl, { onlyNew: false })
    expect((await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.sessions where tenant_id = ${DEMO_TENANT_ID}`)[0]!.n).toBe(60)
    const report = await assessmentReport(db.current.sql, DEMO_TENANT_ID, (await db.current.owner<{ id: string }[]>`select id from assessments.assessments where key = 'health_check'`)[0]!.id, { bucketWidth: 10 })
    expect(report.starts).toBe(30)
    expect(report.scoreDistribution.bands.length).toBeGreaterThan(1)
  })

  it("answers the README's curl: a session of the demo health check by its public key", async () => {
    const res = await webhooks.inject({ method: 'POST', url: '/assessments/ak_demo_health_check_000001/sessions', payload: { demographics: { age: 30 } } })
    expect(res.statusCode).toBe(201)
    expect(res.json().state.question.id).toBe('sleep_hours')
  })
})
