import { runOnce } from 'graphile-worker'
import { beforeAll, describe, expect, it } from 'vitest'
import { crontab } from '../../services/workers/crontab.js'
import { expireDraftsTask } from '../../services/workers/tasks/campaigns__expire_drafts.js'
import { workerLogger } from '../../services/workers/worker.js'
import { testConfig, testLogger } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { getDraft, publishDraft, saveDraft } from './drafts.js'
import { CreateCampaignBody } from './schemas.js'
import { createCampaign, getCampaign } from './service.js'

describe('campaign drafts: expiry 7 days after the last save, swept in batches by campaigns__expire_drafts', () => {
  const db = useTestDatabase()
  let a: TestTenant
  let b: TestTenant
  const who = (t: TestTenant) => ({ tenantId: t.id, actor: 'test', requestId: null })
  const newCampaign = (t: TestTenant, name = 'Draft holder') => createCampaign(db.current.sql, who(t), CreateCampaignBody.parse({ name }))
  const age = (campaignIds: string[], days: number) =>
    db.current.owner`update campaigns.campaign_drafts set saved_at = now() - make_interval(days => ${days}), expires_at = now() - make_interval(days => ${days}) + interval '7 days' where campaign_id = any(${campaignIds}::uuid[])`
  const draftCount = async () => (await db.current.owner<{ n: number }[]>`select count(*)::int as n from campaigns.campaign_drafts`)[0]!.n

  /** The real task, as the cron runs it, with statements of `batch` drafts. */
  const runExpiry = async (batch: number) => {
    await db.current.owner`select graphile_worker.add_job('campaigns__expire_drafts', '{}'::json)`
    await runOnce({
      connectionString: db.current.runtimeUrl,
      taskList: { campaigns__expire_drafts: expireDraftsTask({ config: testConfig({ CAMPAIGN_DRAFT_EXPIRE_BATCH: String(batch) }), sql: db.current.sql, log: testLogger() }) },
      logger: workerLogger(testLogger()),
    })
  }

  beforeAll(async () => {
    a = await makeTenant(db.current.sql)
    b = await makeTenant(db.current.sql)
  })

  it('has an hourly crontab line with an id', () => {
    expect(crontab.some((line) => /^\d+ \* \* \* \* campaigns__expire_drafts \?id=\S+/.test(line))).toBe(true)
  })

  it('ignores an expired draft at once, and the task deletes every expired draft of every tenant in batches, keeping the live ones', async () => {
    const expired: string[] = []
    const live: string[] = []
    for (const [i, t] of [a, a, a, b, b, a, b].entries()) {
      const c = await newCampaign(t)
      await saveDraft(db.current.sql, t.id, c.id, { data: { name: `Draft ${i}` } })
      ;(i % 3 === 2 ? live : expired).push(c.id)
    }
    await age(expired, 8)
    // Just inside the 7 days: kept.
    await age(live.slice(0, 1), 6)
    const firstExpired = expired[0]!
    const owner = (await db.current.owner<{ tenantId: string }[]>`select tenant_id from campaigns.campaigns where id = ${firstExpired}`)[0]!.tenantId
    await expect(getDraft(db.current.sql, owner, firstExpired)).rejects.toMatchObject({ code: 'NOT_FOUND' })
    expect(await draftCount()).toBe(7)

    await runExpiry(2)
    const left = await db.current.owner<{ campaignId: string }[]>`select campaign_id from campaigns.campaign_drafts order by campaign_id`
    expect(left.map((r) => r.campaignId).sort()).toEqual([...live].sort())
    // The campaigns themselves stay.
    expect(await getCampaign(db.current.sql, owner, firstExpired)).not.toBeNull()
    await runExpiry(2)
    expect(await draftCount()).toBe(live.length)
  })

  it('starts an expired (unswept) draft afresh on the next save: a new base version, not the stale one', async () => {
    const c = await newCampaign(a)
    await saveDraft(db.current.sql, a.id, c.id, { data: { name: 'Old' } })
    await db.current.owner`update campaigns.campaigns set version = 5 where id = ${c.id}`
    await age([c.id], 10)
    const d = await saveDraft(db.current.sql, a.id, c.id, { data: { name: 'Fresh' } })
    expect(d.baseVersion).toBe(5)
    expect((await publishDraft(db.current.sql, who(a), c.id)).name).toBe('Fresh')
  })
})
