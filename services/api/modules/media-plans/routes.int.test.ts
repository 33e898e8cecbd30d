import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../../../lib/http/create-server.js'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'

const allocations = [
  { platform: 'meta', percent: '50', cpl: '20', ctr: '1.2', cpc: '1' },
  { platform: 'google', percent: '30', cpl: '40' },
  { platform: 'whatsapp', percent: '20' },
]
const basePlan = { name: 'Q1 clinic plan', budget: '10000.00', currency: 'BRL', market: 'BR', goal: 'leads', niche: 'health', leadToSalePct: '12.5', revenuePerSale: '450.00', allocations }

describe('media plans API', () => {
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

  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown, opts: { key?: string; headers?: Record<string, string> } = {}) =>
    app.inject({ method, url: `/v1/media-plans${url}`, headers: { ...bearer(opts.key ?? tenant.adminKey), ...opts.headers }, ...(payload === undefined ? {} : { payload: payload as object }) })
  const create = async (body: Record<string, unknown> = {}, key = tenant.adminKey) => {
    const res = await call('POST', '', { ...basePlan, ...body }, { key })
    expect(res.statusCode, res.body).toBe(201)
    return res.json()
  }
  const planRows = async (tenantId: string) => (await db.current.owner<{ n: number }[]>`
    select (select count(*) from campaigns.media_plans where tenant_id = ${tenantId})
         + (select count(*) from campaigns.media_plan_allocations where tenant_id = ${tenantId})
         + (select count(*) from campaigns.media_plan_snapshots where tenant_id = ${tenantId}) as n`)[0]!.n
  const makeCampaign = async (t: TestTenant) => (await db.current.owner<{ id: string }[]>`
    insert into campaigns.campaigns (tenant_id, name, utm_campaign) values (${t.id}, 'Launch', ${`launch-${Math.random().toString(36).slice(2, 10)}`}) returning id`)[0]!.id

  describe('happy path', () => {
    it('creates a plan with computed estimates as decimal strings, version 1, and audits it', async () => {
      const plan = await create()
      expect(plan).toMatchObject({ name: 'Q1 clinic plan', budget: '10000.00', currency: 'BRL', leadToSalePct: '12.5', version: 1, manualSplit: false, deletedAt: null })
      const [meta, google, wa] = plan.estimates.platforms
      // meta: 5000.00 / 20 = 250 leads, 31.25 sales, 14062.50 revenue; clicks 5000, impressions 5000 / 1.2% = 416666.
      expect(meta).toMatchObject({ budget: '5000.00', cpl: '20', cplSource: 'manual', leads: '250.00', sales: '31.25', revenue: '14062.50', clicks: '5000', impressions: '416666' })
      // google takes the health benchmark for CTR and CPC (5.5 %, 3.90) but its own CPL.
      expect(google).toMatchObject({ budget: '3000.00', cpl: '40', cplSource: 'manual', ctrSource: 'benchmark', leads: '75.00' })
      // whatsapp: all benchmark (health: CPL 11) → 2000 / 11 = 181.8181… → 181.82.
      expect(wa).toMatchObject({ budget: '2000.00', cplSource: 'benchmark', leads: '181.82' })
      expect(plan.estimates.totals).toMatchObject({ budget: '10000.00', unallocated: '0.00', leads: '506.82' })
      expect(plan.estimates.warnings[0]).toMatch(/USD figures/)
      const audit = await db.current.owner<{ action: string }[]>`select action from core.audit_log where target_id = ${plan.id}`
      expect(audit.map((a) => a.action)).toEqual(['media_plan.created'])
      const got = await call('GET', `/${plan.id}`)
      expect(got.headers.etag).toBe('"1"')
      expect(got.json()).toEqual(plan)
    })

    it('lists plans newest first with a cursor and filters by campaign', async () => {
      const campaignId = await makeCampaign(tenant)
      const linked = await create({ name: 'Linked', campaignId })
      const page = (await call('GET', `?campaignId=${campaignId}`)).json()
      expect(page.data.map((p: { id: string }) => p.id)).toEqual([linked.id])
      const first = (await call('GET', '?limit=1')).json()
      expect(first.nextCursor).toEqual(expect.any(String))
      const second = (await call('GET', `?limit=1&cursor=${first.nextCursor}`)).json()
      expect(second.data[0].id).not.toBe(first.data[0].id)
    })

    it('accepts a manual split whose amounts stay within the budget, reporting what is unallocated', async () => {
      const plan = await create({ manualSplit: true, allocations: [{ platform: 'meta', amount: '2500.00' }, { platform: 'google', amount: 1500.5 }] })
      expect(plan.estimates.platforms.map((p: { percent: string }) => p.percent)).toEqual(['25', '15.005'])
      expect(plan.estimates.totals).toMatchObject({ budget: '4000.50', unallocated: '5999.50' })
    })

    it('creates from a built-in template and from a template saved from a plan; the body wins over the template', async () => {
      const templates = (await call('GET', '/templates')).json().data
      expect(templates.map((t: { id: string }) => t.id)).toContain('builtin:health-clinic')
      const fromBuiltin = await create({ templateId: 'builtin:health-clinic', allocations: undefined, niche: undefined, leadToSalePct: undefined })
      expect(fromBuiltin).toMatchObject({ templateRef: 'builtin:health-clinic', niche: 'health', leadToSalePct: '15' })
      expect(fromBuiltin.allocations.map((a: { platform: string }) => a.platform)).toEqual(['google', 'meta', 'whatsapp'])

      const source = await create({ name: 'Source', fullState: { step: 3 } })
      const saved = await call('POST', '/templates', { name: 'Our clinic split', fromPlanId: source.id })
      expect(saved.statusCode, saved.body).toBe(201)
      const fromSaved = await create({ name: 'From saved', templateId: saved.json().id, allocations: undefined, budget: '500.00' })
      expect(fromSaved).toMatchObject({ budget: '500.00', fullState: { step: 3 }, templateRef: saved.json().id })
      expect(fromSaved.allocations).toEqual(source.allocations)
      expect((await call('POST', '/templates', { name: 'our clinic SPLIT', body: {} })).statusCode).toBe(409)
      expect((await call('DELETE', `/templates/${saved.json().id}`)).statusCode).toBe(204)
      expect((await call('DELETE', '/templates/builtin:health-clinic')).statusCode).toBe(409)
    })

    it('previews estimates without saving anything', async () => {
      const before = await planRows(tenant.id)
      const res = await call('POST', '/estimate', { budget: '100', currency: 'USD', allocations: [{ platform: 'meta', percent: '100', cpl: '3', ctr: '1', cpc: '1' }] })
      expect(res.statusCode, res.body).toBe(200)
      expect(res.json().totals.leads).toBe('33.33')
      expect(await planRows(tenant.id)).toBe(before)
    })
  })

  describe('versions, snapshots, diff and rollback (end to end)', () => {
    it('refuses a stale save from a second device with 409 and the current version, diffs two snapshots and rolls back as a new version', async () => {
      const plan = await create()
      const s1 = await call('POST', `/${plan.id}/snapshots`, { name: 'before review' })
      expect(s1.statusCode, s1.body).toBe(201)
      expect(s1.json()).toMatchObject({ name: 'before review', planVersion: 1 })

      // Device A saves on version 1; device B, still on version 1, is refused and told the version to reload.
      const a = await call('PATCH', `/${plan.id}`, { budget: '12000.00', allocations: [{ platform: 'meta', percent: '60', cpl: '18' }, { platform: 'google', percent: '40' }] }, { headers: { 'if-match': '"1"' } })
      expect(a.statusCode, a.body).toBe(200)
      expect(a.json()).toMatchObject({ version: 2, budget: '12000.00' })
      const b = await call('PATCH', `/${plan.id}`, { name: 'B wins?', version: 1 })
      expect(b.statusCode).toBe(409)
      expect(b.json().error).toMatchObject({ code: 'CONFLICT', details: { currentVersion: 2 } })
      expect((await call('GET', `/${plan.id}`)).json().name).toBe('Q1 clinic plan')

      const s2 = (await call('POST', `/${plan.id}/snapshots`, { name: 'after review' })).json()
      expect((await call('POST', `/${plan.id}/snapshots`, { name: 'after review' })).statusCode).toBe(409)
      const list = (await call('GET', `/${plan.id}/snapshots`)).json().data
      expect(list.map((s: { name: string }) => s.name)).toEqual(['after review', 'before review'])

      const diff = (await call('GET', `/${plan.id}/diff?from=${s1.json().id}&to=${s2.id}`)).json()
      expect(diff.changedFields.sort()).toEqual(['allocations', 'budget'])
      expect(diff.operations).toContainEqual({ op: 'replace', path: '/budget', value: '12000.00' })
      expect(diff.operations).toContainEqual({ op: 'remove', path: '/allocations/2' })
      expect((await call('GET', `/${plan.id}/diff?from=${s2.id}&to=current`)).json().operations).toEqual([])

      // Rollback is conditional too, and writes version 3 with the first snapshot's content.
      expect((await call('POST', `/${plan.id}/rollback`, { snapshotId: s1.json().id, version: 1 })).statusCode).toBe(409)
      const rolled = await call('POST', `/${plan.id}/rollback`, { snapshotId: s1.json().id }, { headers: { 'if-match': '"2"' } })
      expect(rolled.statusCode, rolled.body).toBe(200)
      expect(rolled.json()).toMatchObject({ version: 3, budget: '10000.00' })
      expect(rolled.json().allocations).toEqual(plan.allocations)
      expect(rolled.json().estimates).toEqual(plan.estimates)
      expect((await call('GET', `/${plan.id}/diff?from=${s1.json().id}&to=current`)).json().operations).toEqual([])

      const audit = await db.current.owner<{ action: string; details: { version?: number } }[]>`select action, details from core.audit_log where target_id = ${plan.id} order by id`
      expect(audit.map((x) => x.action)).toEqual(['media_plan.created', 'media_plan.snapshot_created', 'media_plan.updated', 'media_plan.snapshot_created', 'media_plan.rolled_back'])
    })

    it('soft-deletes and restores, each a new version, each audited; a deleted plan cannot be changed', async () => {
      const plan = await create()
      const del = await call('DELETE', `/${plan.id}`, undefined, { headers: { 'if-match': '1' } })
      expect(del.statusCode, del.body).toBe(200)
      expect(del.json()).toMatchObject({ version: 2, deletedAt: expect.any(String) })
      expect((await call('GET', `/${plan.id}`)).statusCode).toBe(404)
      expect((await call('GET', `/${plan.id}?includeDeleted=true`)).json().version).toBe(2)
      expect((await call('GET', '?deleted=only')).json().data.map((p: { id: string }) => p.id)).toContain(plan.id)
      expect((await call('PATCH', `/${plan.id}`, { name: 'x' })).statusCode).toBe(409)
      const restored = await call('POST', `/${plan.id}/restore`, { version: 2 })
      expect(restored.json()).toMatchObject({ version: 3, deletedAt: null })
      expect((await call('POST', `/${plan.id}/restore`, {})).statusCode).toBe(409)
      const audit = await db.current.owner<{ action: string }[]>`select action from core.audit_log where target_id = ${plan.id} order by id`
      expect(audit.map((x) => x.action)).toEqual(['media_plan.created', 'media_plan.deleted', 'media_plan.restored'])
    })
  })

  describe('export and import', () => {
    it('downloads media-plan-YYYY-MM-DD.json with a schema version, and importing it recreates the plan', async () => {
      const plan = await create({ fullState: { step: 4, notes: ['a', 'b'] } })
      const res = await call('GET', `/${plan.id}/export`)
      expect(res.statusCode).toBe(200)
      expect(res.headers['content-disposition']).toMatch(/^attachment; filename="media-plan-\d{4}-\d{2}-\d{2}\.json"$/)
      const file = res.json()
      expect(file).toMatchObject({ schemaVersion: 1, kind: 'media-plan', plan: { name: plan.name, budget: '10000.00', fullState: { step: 4, notes: ['a', 'b'] } } })
      const imported = await call('POST', '/import', file)
      expect(imported.statusCode, imported.body).toBe(201)
      const copy = imported.json()
      expect(copy.id).not.toBe(plan.id)
      expect({ ...copy, id: plan.id, createdAt: 0, updatedAt: 0 }).toEqual({ ...plan, createdAt: 0, updatedAt: 0 })
    })

    it.each([
      ['a missing schemaVersion', (f: Record<string, unknown>) => ({ ...f, schemaVersion: undefined }), 'schemaVersion'],
      ['a future schemaVersion', (f: Record<string, unknown>) => ({ ...f, schemaVersion: 2 }), 'schemaVersion'],
      ['an unknown top-level key', (f: Record<string, unknown>) => ({ ...f, campaigns: [] }), 'body'],
      ['a plan without its budget', (f: Record<string, unknown>) => ({ ...f, plan: { ...(f.plan as object), budget: undefined } }), 'plan.budget'],
      ['allocations not summing to 100', (f: Record<string, unknown>) => ({ ...f, plan: { ...(f.plan as object), allocations: [{ platform: 'meta', percent: '90' }] } }), 'plan.allocations'],
    ])('refuses an import file with %s (400 naming the key), writing nothing', async (_name, mangle, key) => {
      const plan = await create()
      const file = (await call('GET', `/${plan.id}/export`)).json()
      const before = await planRows(tenant.id)
      const res = await call('POST', '/import', mangle(file))
      expect(res.statusCode).toBe(400)
      expect(res.json().error.message).toContain(key)
      expect(await planRows(tenant.id)).toBe(before)
    })
  })

  describe('bad input', () => {
    it.each([
      ['percentages summing to 99.98', { allocations: [{ platform: 'meta', percent: '49.99' }, { platform: 'google', percent: '49.99' }] }, 'allocations'],
      ['percentages summing to 100.02', { allocations: [{ platform: 'meta', percent: '50.01' }, { platform: 'google', percent: '50.01' }] }, 'allocations'],
      ['a platform twice', { allocations: [{ platform: 'meta', percent: '50' }, { platform: 'meta', percent: '50' }] }, 'allocations.1.platform'],
      ['a manual split over the budget', { manualSplit: true, allocations: [{ platform: 'meta', amount: '10000.01' }] }, 'allocations'],
      ['a manual split without amounts', { manualSplit: true, allocations: [{ platform: 'meta', percent: '100' }] }, 'allocations.0.amount'],
      ['a negative budget', { budget: '-1.00' }, 'budget'],
      ['a non-numeric budget', { budget: 'lots' }, 'budget'],
      ['a budget with three decimals', { budget: '10.001' }, 'budget'],
      ['a float budget with binary noise', { budget: 0.1 + 0.2 }, 'budget'],
      ['an unknown currency', { currency: 'XYZ' }, 'currency'],
      ['a lead-to-sale % over 100', { leadToSalePct: '101' }, 'leadToSalePct'],
      ['a zero CPL', { allocations: [{ platform: 'meta', percent: '100', cpl: '0' }] }, 'allocations.0.cpl'],
      ['an unknown platform without its own figures', { allocations: [{ platform: 'snapchat', percent: '100', cpl: '5' }] }, 'allocations.0.ctr'],
      ['a fullState over 256 KiB', { fullState: { blob: 'x'.repeat(256 * 1024) } }, 'fullState'],
      ['an unknown field', { colour: 'red' }, 'body'],
      ['an unknown template', { templateId: 'builtin:nope' }, 'template'],
    ])('refuses %s and writes nothing', async (_name, body, where) => {
      const before = await planRows(tenant.id)
      const res = await call('POST', '', { ...basePlan, ...body })
      expect([400, 404]).toContain(res.statusCode)
      expect(res.statusCode === 404 ? 'template' : res.json().error.message).toContain(where)
      expect(await planRows(tenant.id)).toBe(before)
    })

    it('refuses a bad patch (percentages, If-Match that disagrees with the body, malformed If-Match) without a new version', async () => {
      const plan = await create()
      expect((await call('PATCH', `/${plan.id}`, { allocations: [{ platform: 'meta', percent: '10' }] })).statusCode).toBe(400)
      expect((await call('PATCH', `/${plan.id}`, { name: 'x', version: 1 }, { headers: { 'if-match': '"2"' } })).statusCode).toBe(400)
      expect((await call('PATCH', `/${plan.id}`, { name: 'x' }, { headers: { 'if-match': 'abc' } })).statusCode).toBe(400)
      expect((await call('GET', `/${plan.id}`)).json().version).toBe(1)
    })

    it('keeps the version when a patch changes nothing (the same budget spelled differently)', async () => {
      const plan = await create()
      const res = await call('PATCH', `/${plan.id}`, { budget: 10000, leadToSalePct: '12.50', version: 1 })
      expect(res.statusCode, res.body).toBe(200)
      expect(res.json().version).toBe(1)
    })

    it('answers 404 for a plan, snapshot or campaign that does not exist', async () => {
      const missing = '00000000-0000-4000-8000-000000000000'
      expect((await call('GET', `/${missing}`)).statusCode).toBe(404)
      expect((await call('POST', '', { ...basePlan, campaignId: missing })).statusCode).toBe(404)
      const plan = await create()
      expect((await call('GET', `/${plan.id}/snapshots/${missing}`)).statusCode).toBe(404)
      expect((await call('POST', `/${plan.id}/rollback`, { snapshotId: missing })).statusCode).toBe(404)
    })
  })

  describe('security', () => {
    it("answers 404 for another tenant's plan, snapshot, campaign and template, reading and writing, and changes nothing", async () => {
      const theirs = await create({}, other.adminKey)
      const theirSnapshot = (await call('POST', `/${theirs.id}/snapshots`, { name: 'theirs' }, { key: other.adminKey })).json()
      const theirCampaign = await makeCampaign(other)
      const theirTemplate = (await call('POST', '/templates', { name: 'Theirs', body: {} }, { key: other.adminKey })).json()
      const before = await planRows(other.id)
      for (const [method, url, body] of [
        ['GET', `/${theirs.id}`, undefined], ['PATCH', `/${theirs.id}`, { name: 'mine now' }], ['DELETE', `/${theirs.id}`, undefined],
        ['POST', `/${theirs.id}/restore`, {}], ['POST', `/${theirs.id}/snapshots`, { name: 'x' }], ['GET', `/${theirs.id}/snapshots`, undefined],
        ['GET', `/${theirs.id}/snapshots/${theirSnapshot.id}`, undefined], ['GET', `/${theirs.id}/diff?from=${theirSnapshot.id}&to=current`, undefined],
        ['POST', `/${theirs.id}/rollback`, { snapshotId: theirSnapshot.id }], ['GET', `/${theirs.id}/export`, undefined],
        ['POST', '', { ...basePlan, campaignId: theirCampaign }], ['POST', '', { ...basePlan, templateId: theirTemplate.id }],
        ['DELETE', `/templates/${theirTemplate.id}`, undefined], ['POST', '/templates', { name: 'copy', fromPlanId: theirs.id }],
      ] as const) {
        const res = await call(method, url, body)
        expect(res.statusCode, `${method} ${url}`).toBe(404)
      }
      const mine = await create()
      expect((await call('GET', `/${mine.id}/snapshots/${theirSnapshot.id}`)).statusCode).toBe(404)
      expect((await call('GET', `/${mine.id}/diff?from=${theirSnapshot.id}&to=current`)).statusCode).toBe(404)
      expect(await planRows(other.id)).toBe(before)
      expect((await call('GET', '')).json().data.map((p: { id: string }) => p.id)).not.toContain(theirs.id)
      expect((await call('GET', '/templates')).json().data.map((t: { id: string }) => t.id)).not.toContain(theirTemplate.id)
    })

    it('lets a read-only key read but not write, and refuses a request without a key', async () => {
      const plan = await create()
      const readOnly = (await makeApiKey(db.current.sql, tenant, 'read_only')).key
      expect((await call('GET', `/${plan.id}`, undefined, { key: readOnly })).statusCode).toBe(200)
      expect((await call('PATCH', `/${plan.id}`, { name: 'x' }, { key: readOnly })).statusCode).toBe(403)
      expect((await call('POST', '', basePlan, { key: readOnly })).statusCode).toBe(403)
      expect((await app.inject({ method: 'GET', url: `/v1/media-plans/${plan.id}` })).statusCode).toBe(401)
    })
  })
})
