import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../lib/http/create-server.js'
import { bearer, buildTestApi } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { DraftAutosave, draftLane, getDraft, publishDraft, saveDraft, saveDrafts } from './drafts.js'
import { CreateCampaignBody, type DraftView, type SaveDraftBody } from './schemas.js'
import { createCampaign, deleteCampaign, updateCampaign } from './service.js'

describe('campaign draft autosave, group-committed: one statement per flush, every save answered on its own', () => {
  const db = useTestDatabase()
  let a: TestTenant
  let b: TestTenant
  const who = (t: TestTenant) => ({ tenantId: t.id, actor: 'test', requestId: null })
  const newCampaign = async (t: TestTenant, name = 'Draft holder') => (await createCampaign(db.current.sql, who(t), CreateCampaignBody.parse({ name }))).id
  /** The stored drafts of `ids` with the transaction that last wrote each (xmin): one xmin, one flush. */
  const stored = async (ids: string[]) => db.current.owner<{ campaignId: string; tenantId: string; data: Record<string, unknown>; step: string | null; saves: number; baseVersion: number; xmin: string }[]>`
    select campaign_id, tenant_id, data, step, saves, base_version, xmin::text as xmin from campaigns.campaign_drafts where campaign_id = any(${ids}::uuid[])`
  const byId = <T extends { campaignId: string }>(rows: T[]) => new Map(rows.map((r) => [r.campaignId, r]))

  /**
   * Holds the autosave's first flush on a row lock of `blockerId`'s draft, so that every save added meanwhile waits in
   * the queue and goes into the next flush, all together; `release` lets both run.
   */
  async function holdFirstFlush(autosave: DraftAutosave, tenant: TestTenant, blockerId: string) {
    await saveDraft(db.current.sql, tenant.id, blockerId, { data: { name: 'blocker' } })
    const conn = await db.current.owner.reserve()
    await conn`begin`
    await conn`select 1 from campaigns.campaign_drafts where campaign_id = ${blockerId} for update`
    const first = autosave.save(tenant.id, blockerId, { data: { name: 'blocker, saved again' } })
    // The first flush is writing (waiting for the lock) once its backend shows up as waiting on it.
    for (let i = 0; i < 200; i++) {
      const [w] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%save_drafts%'`
      if (w!.n > 0) break
      await new Promise((r) => setTimeout(r, 25))
    }
    return {
      first,
      release: async () => {
        await conn`commit`
        conn.release()
      },
    }
  }
  const settle = <T>(p: Promise<T>) => p.then((value) => ({ ok: true as const, value }), (error: { code?: string }) => ({ ok: false as const, code: error.code }))

  beforeAll(async () => {
    a = await makeTenant(db.current.sql)
    b = await makeTenant(db.current.sql)
  })

  it('answers a deleted campaign, another tenant\'s and an unknown one 404 each, and stores their neighbours in the same flush', async () => {
    const autosave = new DraftAutosave(db.current.sql)
    const [blocker, good1, good2, gone, theirs] = [await newCampaign(a), await newCampaign(a), await newCampaign(a), await newCampaign(a), await newCampaign(b)]
    await deleteCampaign(db.current.sql, who(a), gone)
    const unknown = '00000000-0000-4000-8000-000000000001'
    const held = await holdFirstFlush(autosave, a, blocker)
    const results = await (async () => {
      const pending = [
        settle(autosave.save(a.id, good1, { step: '1', data: { name: 'Good 1' } })),
        settle(autosave.save(a.id, gone, { data: { name: 'Deleted' } })),
        settle(autosave.save(a.id, theirs, { data: { name: 'Not mine' } })),
        settle(autosave.save(a.id, unknown, { data: { name: 'Unknown' } })),
        settle(autosave.save(a.id, good2, { step: '2', data: { name: 'Good 2' } })),
      ]
      await held.release()
      return Promise.all(pending)
    })()
    expect((await held.first).data).toEqual({ name: 'blocker, saved again' })

    expect(results.map((r) => (r.ok ? 'stored' : r.code))).toEqual(['stored', 'NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND', 'stored'])
    expect(results[0]).toMatchObject({ ok: true, value: { campaignId: good1, step: '1', data: { name: 'Good 1' }, saves: 1, baseVersion: 1 } })
    const rows = byId(await stored([blocker, good1, good2, gone, theirs]))
    expect([...rows.keys()].sort()).toEqual([blocker, good1, good2].sort())
    // The two good saves committed together, in a transaction after the blocker's.
    expect(rows.get(good1)!.xmin).toBe(rows.get(good2)!.xmin)
    expect(rows.get(good1)!.xmin).not.toBe(rows.get(blocker)!.xmin)
    expect(rows.get(good2)).toMatchObject({ tenantId: a.id, step: '2', data: { name: 'Good 2' } })
  })

  it('fails only the save PostgreSQL refuses (a NUL in its data, past the boundary checks), storing the others of its flush', async () => {
    const autosave = new DraftAutosave(db.current.sql)
    const [blocker, good1, bad, good2] = [await newCampaign(a), await newCampaign(a), await newCampaign(a), await newCampaign(b)]
    const held = await holdFirstFlush(autosave, a, blocker)
    const pending = [
      settle(autosave.save(a.id, good1, { data: { name: 'Good' } })),
      settle(autosave.save(a.id, bad, { data: { name: 'Bad \u0000 value' } })),
      settle(autosave.save(b.id, good2, { data: { name: 'Good too' } })),
    ]
    await held.release()
    const results = await Promise.all(pending)
    expect(results.map((r) => (r.ok ? 'stored' : r.code))).toEqual(['stored', 'BAD_REQUEST', 'stored'])
    const rows = byId(await stored([good1, bad, good2]))
    expect([...rows.keys()].sort()).toEqual([good1, good2].sort())
    expect(rows.get(good2)).toMatchObject({ tenantId: b.id, data: { name: 'Good too' } })
  })

  it('stores two tenants\' saves in one statement, each under its own tenant, and each sees only its own', async () => {
    const [mineA, mineB] = [await newCampaign(a), await newCampaign(b)]
    const results = await saveDrafts(db.current.sql, [
      { tenantId: a.id, campaignId: mineA, body: { data: { name: 'A' } } },
      { tenantId: b.id, campaignId: mineB, body: { data: { name: 'B' } } },
      // Tenant b naming a's campaign: RLS hides it, so 404, and a's draft is not touched.
      { tenantId: b.id, campaignId: mineA, body: { data: { name: 'B writing A' } } },
    ])
    expect(results.map((r) => (r instanceof Error ? (r as { code?: string }).code : (r as DraftView).data))).toEqual([{ name: 'A' }, { name: 'B' }, 'NOT_FOUND'])
    const rows = byId(await stored([mineA, mineB]))
    expect(rows.get(mineA)).toMatchObject({ tenantId: a.id, data: { name: 'A' }, saves: 1 })
    expect(rows.get(mineB)).toMatchObject({ tenantId: b.id, data: { name: 'B' }, saves: 1 })
    expect(rows.get(mineA)!.xmin).toBe(rows.get(mineB)!.xmin)
    expect((await getDraft(db.current.sql, a.id, mineA)).data).toEqual({ name: 'A' })
    await expect(getDraft(db.current.sql, b.id, mineA)).rejects.toMatchObject({ code: 'NOT_FOUND' })
    await expect(getDraft(db.current.sql, a.id, mineB)).rejects.toMatchObject({ code: 'NOT_FOUND' })
    // The caller's own tenant setting is put back: nothing of the last batch's tenant stays on the connection.
    const [setting] = await db.current.sql.begin(async (tx) => {
      await tx`select set_config('app.tenant_id', ${a.id}, true)`
      await saveDrafts(tx, [{ tenantId: b.id, campaignId: mineB, body: { data: { name: 'B again' } } }])
      return tx<{ t: string }[]>`select current_setting('app.tenant_id', true) as t`
    })
    expect(setting!.t).toBe(a.id)
  })

  it('keeps the last save of a draft by arrival order, counts every save, and answers each with the draft as of its own save', async () => {
    const autosave = new DraftAutosave(db.current.sql)
    const [blocker, c] = [await newCampaign(a), await newCampaign(a)]
    await saveDraft(db.current.sql, a.id, c, { data: { name: 'Before' } })
    const held = await holdFirstFlush(autosave, a, blocker)
    const bodies: SaveDraftBody[] = [1, 2, 3, 4, 5].map((i) => ({ step: String(i), data: { name: `Keystroke ${i}` } }))
    const pending = bodies.map((body) => autosave.save(a.id, c, body))
    await held.release()
    const answers = await Promise.all(pending)
    expect(answers.map((d) => [d.step, d.data.name, d.saves])).toEqual([1, 2, 3, 4, 5].map((i) => [String(i), `Keystroke ${i}`, 1 + i]))
    const [row] = await stored([c])
    expect(row).toMatchObject({ step: '5', data: { name: 'Keystroke 5' }, saves: 6, baseVersion: 1 })
    expect((await getDraft(db.current.sql, a.id, c)).data).toEqual({ name: 'Keystroke 5' })
  })

  it('keeps the base version a draft was started from across grouped saves, so publishing it onto a newer campaign is still a 409', async () => {
    const [c, d] = [await newCampaign(a), await newCampaign(a)]
    await saveDrafts(db.current.sql, [
      { tenantId: a.id, campaignId: c, body: { data: { name: 'Device A, first' } } },
      { tenantId: a.id, campaignId: c, body: { data: { name: 'Device A, second' } } },
    ])
    // Someone else saves the campaign itself: version 2.
    await updateCampaign(db.current.sql, who(a), c, { description: 'edited elsewhere' })
    const later = await saveDrafts(db.current.sql, [
      { tenantId: a.id, campaignId: c, body: { data: { name: 'Device A, third' } } },
      { tenantId: a.id, campaignId: d, body: { data: { name: 'Other' } } },
    ])
    expect(later[0]).toMatchObject({ baseVersion: 1, saves: 3 })
    await expect(publishDraft(db.current.sql, who(a), c)).rejects.toMatchObject({ code: 'CONFLICT' })

    // A save naming the newer version it was reopened at: the saves folded before it keep the old base, those after
    // it (naming none) the new one; the draft now publishes.
    const reopened = await saveDrafts(db.current.sql, [
      { tenantId: a.id, campaignId: c, body: { data: { name: 'Still old' } } },
      { tenantId: a.id, campaignId: c, body: { data: { name: 'Reopened' }, baseVersion: 2 } },
      { tenantId: a.id, campaignId: c, body: { data: { name: 'Typing on' } } },
    ])
    expect(reopened.map((r) => (r as DraftView).baseVersion)).toEqual([1, 2, 2])
    expect((await publishDraft(db.current.sql, who(a), c))).toMatchObject({ name: 'Typing on', version: 3 })
  })

  it('with two lanes, stores a save of the other lane while a flush is held, and keeps a draft\'s saves in arrival order in its own lane', async () => {
    const autosave = new DraftAutosave(db.current.sql, { lanes: 2 })
    const blocker = await newCampaign(a)
    const lane = draftLane(blocker, 2)
    let same = await newCampaign(a)
    let other = await newCampaign(a)
    while (draftLane(same, 2) !== lane) same = await newCampaign(a)
    while (draftLane(other, 2) === lane) other = await newCampaign(a)
    const held = await holdFirstFlush(autosave, a, blocker)
    let sameSettled = false
    const sameSaves = [1, 2, 3].map((i) => autosave.save(a.id, same, { step: String(i), data: { name: `Same lane ${i}` } }).finally(() => (sameSettled = true)))
    // The other lane is not behind the held flush: committed and answered while it still waits for its lock.
    expect(await autosave.save(a.id, other, { data: { name: 'Other lane' } })).toMatchObject({ campaignId: other, saves: 1 })
    expect(byId(await stored([other])).get(other)).toMatchObject({ data: { name: 'Other lane' } })
    expect(sameSettled).toBe(false)
    await held.release()
    expect((await Promise.all(sameSaves)).map((d) => [d.step, d.saves])).toEqual([['1', 1], ['2', 2], ['3', 3]])
    expect(byId(await stored([same])).get(same)).toMatchObject({ step: '3', data: { name: 'Same lane 3' }, saves: 3 })
    expect((await held.first).data).toEqual({ name: 'blocker, saved again' })
  })

  describe('over HTTP', () => {
    let app: App
    beforeAll(async () => {
      app = await buildTestApi(db.current)
    })
    afterAll(() => app.close())

    it('answers concurrent PUTs of two tenants each with its own status, and refuses bad bodies before anything is queued', async () => {
      const mine = await Promise.all([1, 2, 3].map(() => newCampaign(a)))
      const theirs = await newCampaign(b)
      const put = (t: TestTenant, id: string, payload: unknown) =>
        app.inject({ method: 'PUT', url: `/v1/campaigns/${id}/draft`, headers: bearer(t.adminKey), payload: payload as object })
      const res = await Promise.all([
        ...mine.map((id, i) => put(a, id, { step: i, data: { name: `A ${i}` } })),
        put(b, theirs, { data: { name: 'B' } }),
        put(b, mine[0]!, { data: { name: 'B into A' } }),
        put(a, mine[1]!, { data: { blob: 'x'.repeat(270_000) } }),
        put(a, mine[2]!, { data: {}, unknownField: true }),
      ])
      expect(res.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 404, 400, 400])
      expect(res[4]!.json().error.code).toBe('NOT_FOUND')
      const rows = byId(await stored([...mine, theirs]))
      expect(mine.map((id) => rows.get(id)!.data)).toEqual([{ name: 'A 0' }, { name: 'A 1' }, { name: 'A 2' }])
      expect(rows.get(theirs)).toMatchObject({ tenantId: b.id, data: { name: 'B' } })
    })
  })
})
