import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runSeeds, SEEDS_DIR } from './seed.js'
import { bearer, buildTestApi } from '../test/apps.js'
import { useTestDatabase } from '../test/db.js'
import { createApiKey } from '../domains/tenancy/service.js'

const PLAN = '00000000-0000-4000-8000-0000000000d1'
const DEMO = '00000000-0000-4000-8000-000000000001'

describe('the demo media plan seed', () => {
  const db = useTestDatabase()

  it('gives the demo campaign a plan with two snapshots the API can read, diff and roll back to, and adds nothing when run again', async () => {
    // The demo tenant and this seed only (the analytics history is another test's, and slow).
    const dir = await mkdtemp(path.join(tmpdir(), 'wa-seeds-'))
    for (const f of ['0001_demo_tenant.sql', '0006_demo_media_plan.sql']) await copyFile(path.join(SEEDS_DIR, f), path.join(dir, f))
    await runSeeds(db.current.ownerUrl, { onlyNew: false, dir })
    const count = () => db.current.owner<{ n: number }[]>`
      select (select count(*) from campaigns.media_plans) + (select count(*) from campaigns.media_plan_snapshots)
           + (select count(*) from campaigns.media_plan_allocations) + (select count(*) from core.audit_log where target_id = ${PLAN}) as n`.then((r) => Number(r[0]!.n))
    const first = await count()
    await runSeeds(db.current.ownerUrl, { onlyNew: false, dir })
    expect(await count()).toBe(first)
    await rm(dir, { recursive: true, force: true })

    const app = await buildTestApi(db.current)
    try {
      const { key } = await createApiKey(db.current.sql, { kind: 'tenant', tenantId: DEMO, keyId: 'seed', role: 'admin' }, { name: 'test', role: 'admin' })
      const get = (url: string) => app.inject({ method: 'GET', url: `/v1/media-plans/${PLAN}${url}`, headers: bearer(key) })
      const plan = (await get('')).json()
      expect(plan).toMatchObject({ version: 2, campaignId: '00000000-0000-4000-8000-0000000000c4', budget: '6000.00' })
      const snapshots = (await get('/snapshots')).json().data
      expect(snapshots.map((s: { name: string }) => s.name)).toEqual(['Aprovado pela clínica', 'Rascunho inicial'])
      const diff = (await get(`/diff?from=${snapshots[1].id}&to=${snapshots[0].id}`)).json()
      expect(diff.changedFields.sort()).toEqual(['allocations', 'budget', 'fullState', 'leadToSalePct'])
      expect((await get(`/diff?from=${snapshots[0].id}&to=current`)).json().operations).toEqual([])
      const rolled = await app.inject({ method: 'POST', url: `/v1/media-plans/${PLAN}/rollback`, headers: bearer(key), payload: { snapshotId: snapshots[1].id, version: 2 } })
      expect(rolled.statusCode, rolled.body).toBe(200)
      expect(rolled.json()).toMatchObject({ version: 3, budget: '5000.00' })
    } finally {
      await app.close()
    }
  })
})
