import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../../../lib/http/create-server.js'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'

describe('campaigns API', () => {
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

  const call = (method: Method, url: string, payload?: unknown, opts: { key?: string; headers?: Record<string, string> } = {}) =>
    app.inject({ method, url: `/v1/campaigns${url}`, headers: { ...bearer(opts.key ?? tenant.adminKey), ...opts.headers }, ...(payload === undefined ? {} : { payload: payload as object }) })
  const create = async (body: Record<string, unknown> = {}, key = tenant.adminKey) => {
    const res = await call('POST', '', { name: 'Spring launch', budget: '1500.00', currency: 'BRL', ...body }, { key })
    expect(res.statusCode, res.body).toBe(201)
    return res.json()
  }
  const rowsOf = async (tenantId: string) => (await db.current.owner<{ n: number }[]>`
    select (select count(*) from campaigns.campaigns where tenant_id = ${tenantId})
         + (select count(*) from campaigns.campaign_drafts where tenant_id = ${tenantId})
         + (select count(*) from campaigns.campaign_snapshots where tenant_id = ${tenantId})
         + (select count(*) from campaigns.publications where tenant_id = ${tenantId}) as n`)[0]!.n
  const fingerprint = async (tenantId: string) => JSON.stringify(await db.current.owner`
    select id, version, status, name, budget::text, currency, config, deleted_at from campaigns.campaigns where tenant_id = ${tenantId} order by id`)

  describe('happy path', () => {
    it('creates a draft campaign (version 1, exact budget, ETag), records campaign.created and an audit entry', async () => {
      const res = await call('POST', '', {
        name: 'Spring launch', type: 'lead_generation', budget: 1500.5, currency: 'brl', utmCampaign: 'spring-2026',
        startsAt: '2026-03-01T00:00:00Z', endsAt: '2026-03-31T23:59:59Z',
        config: { audience: { locations: ['BR'], ageMin: 25, ageMax: 55 }, platforms: [{ platform: 'meta', placements: ['feed'] }, { platform: 'google' }], publish: { mode: 'manual' } },
      })
      expect(res.statusCode, res.body).toBe(201)
      expect(res.headers.etag).toBe('"1"')
      const c = res.json()
      expect(c).toMatchObject({ status: 'draft', version: 1, budget: '1500.50', currency: 'BRL', utmCampaign: 'spring-2026', deletedAt: null })
      expect(c.config.platforms).toEqual([{ platform: 'meta', placements: ['feed'] }, { platform: 'google' }])
      const [event] = await db.current.owner<{ name: string; properties: { campaignId: string } }[]>`
        select name, properties from analytics.events where tenant_id = ${tenant.id} and dedupe_key = ${`campaign:created:${c.id}`}`
      expect(event).toMatchObject({ name: 'campaign.created', properties: { campaignId: c.id } })
      const audit = await db.current.owner<{ action: string }[]>`select action from core.audit_log where target_id = ${c.id}`
      expect(audit.map((a) => a.action)).toEqual(['campaign.created'])
      expect((await call('GET', `/${c.id}`)).json()).toMatchObject({ id: c.id, version: 1 })
      expect((await call('GET', '?status=draft')).json().data.map((x: { id: string }) => x.id)).toContain(c.id)
    })

    it('walks the lifecycle draft → scheduled → active → paused → active → completed → archived, each move a version and an event', async () => {
      const c = await create({ startsAt: '2026-05-01T00:00:00Z' })
      let version = c.version
      for (const status of ['scheduled', 'active', 'paused', 'active', 'completed', 'archived']) {
        const res = await call('POST', `/${c.id}/status`, { status, version })
        expect(res.statusCode, `${status}: ${res.body}`).toBe(200)
        expect(res.json().status).toBe(status)
        version = res.json().version
      }
      expect(version).toBe(7)
      const events = await db.current.owner<{ properties: { from: string; to: string } }[]>`
        select properties from analytics.events where tenant_id = ${tenant.id} and name = 'campaign.status_changed' and properties->>'campaignId' = ${c.id} order by occurred_at, id`
      expect(events.map((e) => `${e.properties.from}>${e.properties.to}`)).toEqual(['draft>scheduled', 'scheduled>active', 'active>paused', 'paused>active', 'active>completed', 'completed>archived'])
    })

    it('changes fields with If-Match, soft-deletes and restores, auditing each', async () => {
      const c = await create()
      const patched = await call('PATCH', `/${c.id}`, { name: 'Renamed', budget: '2000' }, { headers: { 'if-match': '"1"' } })
      expect(patched.statusCode, patched.body).toBe(200)
      expect(patched.json()).toMatchObject({ name: 'Renamed', budget: '2000.00', version: 2 })
      expect(patched.headers.etag).toBe('"2"')
      expect((await call('PATCH', `/${c.id}`, {})).json().version).toBe(2)
      const deleted = await call('DELETE', `/${c.id}`)
      expect(deleted.json()).toMatchObject({ version: 3, deletedAt: expect.any(String) })
      expect((await call('GET', '')).json().data.map((x: { id: string }) => x.id)).not.toContain(c.id)
      expect((await call('GET', '?deleted=true')).json().data.map((x: { id: string }) => x.id)).toContain(c.id)
      expect((await call('PATCH', `/${c.id}`, { name: 'x' })).statusCode).toBe(404)
      const restored = await call('POST', `/${c.id}/restore`)
      expect(restored.json()).toMatchObject({ version: 4, deletedAt: null })
      const audit = await db.current.owner<{ action: string; details: { fields?: string[] } }[]>`select action, details from core.audit_log where target_id = ${c.id} order by id`
      expect(audit.map((a) => a.action)).toEqual(['campaign.created', 'campaign.updated', 'campaign.deleted', 'campaign.restored'])
      expect(audit[1]!.details.fields).toEqual(['name', 'budget'])
      const history = (await call('GET', `/${c.id}/history`)).json().data
      expect(history.map((h: { action: string; details: { version: number } }) => [h.action, h.details.version])).toEqual([
        ['campaign.restored', 4], ['campaign.deleted', 3], ['campaign.updated', 2], ['campaign.created', 1],
      ])
      expect(JSON.stringify(history)).not.toContain('Renamed')
    })

    it('names snapshots, diffs two of them as JSON Patch, and rolls back as a new version', async () => {
      const c = await create({ config: { audience: { locations: ['BR'] } } })
      const s1 = (await call('POST', `/${c.id}/snapshots`, { label: 'first cut' })).json()
      expect(s1).toMatchObject({ label: 'first cut', version: 1 })
      await call('PATCH', `/${c.id}`, { budget: '2500.00', config: { audience: { locations: ['BR', 'PT'] } } })
      const s2res = await call('POST', `/${c.id}/snapshots`, { label: 'bigger' })
      expect(s2res.statusCode).toBe(201)
      const s2 = s2res.json()
      expect(s2.version).toBe(2)
      expect((await call('POST', `/${c.id}/snapshots`, { label: 'bigger' })).statusCode).toBe(409)

      const diff = (await call('GET', `/${c.id}/snapshots/diff?from=${s1.id}&to=${s2.id}`)).json()
      expect(diff.fields.sort()).toEqual(['budget', 'config'])
      expect(diff.patch).toEqual(expect.arrayContaining([
        { op: 'replace', path: '/budget', value: '2500.00' },
        { op: 'add', path: '/config/audience/locations/1', value: 'PT' },
      ]))
      expect((await call('GET', `/${c.id}/snapshots/diff?from=${s2.id}`)).json().patch).toEqual([])

      const rolled = await call('POST', `/${c.id}/snapshots/${s1.id}/rollback`, { version: 2 })
      expect(rolled.statusCode, rolled.body).toBe(200)
      expect(rolled.json()).toMatchObject({ version: 3, budget: '1500.00', config: { audience: { locations: ['BR'] } } })
      expect((await call('GET', `/${c.id}/snapshots/diff?from=${s1.id}&to=current`)).json().patch).toEqual([])
      expect((await call('GET', `/${c.id}/snapshots`)).json().data.map((s: { label: string }) => s.label)).toEqual(['bigger', 'first cut'])
      const audit = await db.current.owner<{ action: string }[]>`select action from core.audit_log where target_id = ${c.id} and action = 'campaign.rolled_back'`
      expect(audit).toHaveLength(1)
    })

    it('auto-saves a draft (one row, rewritten), restores it, and publishes it onto the campaign in one transaction', async () => {
      const c = await create()
      for (let i = 1; i <= 3; i++) {
        const res = await call('PUT', `/${c.id}/draft`, { step: i, data: { name: `Draft ${i}`, budget: '900', builderStep: { audienceTab: 'interests' } } })
        expect(res.statusCode, res.body).toBe(200)
        expect(res.json()).toMatchObject({ step: String(i), baseVersion: 1, saves: i })
      }
      const draft = (await call('GET', `/${c.id}/draft`)).json()
      expect(draft.data).toEqual({ name: 'Draft 3', budget: '900', builderStep: { audienceTab: 'interests' } })
      expect(new Date(draft.expiresAt).getTime() - new Date(draft.savedAt).getTime()).toBe(7 * 86_400_000)
      const published = await call('POST', `/${c.id}/draft/publish`)
      expect(published.statusCode, published.body).toBe(200)
      expect(published.json()).toMatchObject({ name: 'Draft 3', budget: '900.00', version: 2 })
      expect((await call('GET', `/${c.id}/draft`)).statusCode).toBe(404)
    })

    it('records publications per platform (upsert) with metrics and last sync', async () => {
      const c = await create()
      const first = await call('PUT', `/${c.id}/publications/meta`, { status: 'publishing' })
      expect(first.statusCode, first.body).toBe(200)
      const second = await call('PUT', `/${c.id}/publications/meta`, { status: 'published', externalId: '120200000000001', metrics: { impressions: 10000, clicks: 320, leads: 41, spend: '350.75', currency: 'BRL' } })
      expect(second.json()).toMatchObject({ id: first.json().id, status: 'published', externalId: '120200000000001', metrics: { spend: '350.75', leads: 41 }, lastSyncedAt: expect.any(String) })
      expect((await call('GET', `/${c.id}/publications`)).json().data).toHaveLength(1)
      const otherCampaign = await create()
      const taken = await call('PUT', `/${otherCampaign.id}/publications/meta`, { status: 'published', externalId: '120200000000001' })
      expect(taken.statusCode).toBe(409)
      expect(taken.json().error.details).toEqual({ field: 'externalId' })
      expect((await call('GET', `/${otherCampaign.id}/publications`)).json().data).toEqual([])
    })
  })

  describe('bad input changes nothing', () => {
    it.each([
      ['a negative budget', { budget: '-1' }, 'body.budget'],
      ['a non-numeric budget', { budget: 'lots' }, 'body.budget'],
      ['a budget with three decimals', { budget: 10.125 }, 'body.budget'],
      ['an unknown currency', { currency: 'XYZ' }, 'body.currency'],
      ['a budget without currency', { currency: null }, 'body.currency'],
      ['an end before its start', { startsAt: '2026-03-10T00:00:00Z', endsAt: '2026-03-01T00:00:00Z' }, 'body.endsAt'],
      ['an unknown config field', { config: { audiance: {} } }, 'body.config'],
      ['an unknown platform', { config: { platforms: [{ platform: 'myspace' }] } }, 'body.config.platforms.0.platform'],
      ['an oversized config', { config: { audience: { interests: Array.from({ length: 400 }, (_, i) => `${'x'.repeat(190)}${i}`) } } }, 'body.config'],
      ['a status on create', { status: 'active' }, 'body'],
    ])('refuses %s with 400', async (_name, body, field) => {
      const before = await rowsOf(tenant.id)
      const res = await call('POST', '', { name: 'Bad', budget: '10', currency: 'BRL', ...body })
      expect(res.statusCode, res.body).toBe(400)
      expect(res.json().error.code).toBe('BAD_REQUEST')
      expect(res.json().error.message).toContain(field)
      expect(await rowsOf(tenant.id)).toBe(before)
    })

    it('refuses an illegal transition with 409 naming the allowed ones', async () => {
      const c = await create()
      const res = await call('POST', `/${c.id}/status`, { status: 'completed' })
      expect(res.statusCode).toBe(409)
      expect(res.json().error.details).toEqual({ from: 'draft', to: 'completed', allowed: ['scheduled', 'active', 'archived'] })
      expect(res.json().error.message).toContain('scheduled, active, archived')
      const scheduleWithoutStart = await call('POST', `/${c.id}/status`, { status: 'scheduled' })
      expect(scheduleWithoutStart.statusCode).toBe(422)
      expect((await call('GET', `/${c.id}`)).json()).toMatchObject({ status: 'draft', version: 1 })
    })

    it('refuses a stale version (If-Match or body) with 409 and the current version, and a malformed If-Match with 400', async () => {
      const c = await create()
      await call('PATCH', `/${c.id}`, { name: 'Device A' }, { headers: { 'if-match': '"1"' } })
      const before = await fingerprint(tenant.id)
      for (const attempt of [
        () => call('PATCH', `/${c.id}`, { name: 'Device B' }, { headers: { 'if-match': '"1"' } }),
        () => call('PATCH', `/${c.id}`, { name: 'Device B', version: 1 }),
        () => call('POST', `/${c.id}/status`, { status: 'archived', version: 1 }),
        () => call('DELETE', `/${c.id}`, undefined, { headers: { 'if-match': 'W/"1"' } }),
      ]) {
        const res = await attempt()
        expect(res.statusCode, res.body).toBe(409)
        expect(res.json().error.details).toEqual({ currentVersion: 2 })
      }
      expect((await call('PATCH', `/${c.id}`, { name: 'x' }, { headers: { 'if-match': 'banana' } })).statusCode).toBe(400)
      expect(await fingerprint(tenant.id)).toBe(before)
    })

    it('refuses to publish a draft started from an older version (409), and one whose fields are invalid (400), changing nothing', async () => {
      const c = await create()
      await call('PUT', `/${c.id}/draft`, { data: { name: 'From device A' } })
      await call('PATCH', `/${c.id}`, { name: 'Saved by device B' })
      const stale = await call('POST', `/${c.id}/draft/publish`)
      expect(stale.statusCode).toBe(409)
      expect(stale.json().error.details).toEqual({ currentVersion: 2 })
      const bad = await create()
      await call('PUT', `/${bad.id}/draft`, { data: { budget: '-5', currency: 'ZZZ' } })
      const before = await fingerprint(tenant.id)
      const invalid = await call('POST', `/${bad.id}/draft/publish`)
      expect(invalid.statusCode, invalid.body).toBe(400)
      expect(invalid.json().error.details.map((d: { path: string }) => d.path).sort()).toEqual(['data.budget', 'data.currency'])
      expect(await fingerprint(tenant.id)).toBe(before)
      expect((await call('GET', `/${bad.id}/draft`)).statusCode).toBe(200)
      // Overwriting on purpose: the client names the version it now knows.
      expect((await call('POST', `/${c.id}/draft/publish`, { version: 2 })).json()).toMatchObject({ name: 'From device A', version: 3 })
    })

    it('refuses a draft over 256 KiB, and a second campaign with the same utm_campaign (409 naming it)', async () => {
      const c = await create({ utmCampaign: 'dup-code' })
      const big = await call('PUT', `/${c.id}/draft`, { data: { blob: 'x'.repeat(270_000) } })
      expect(big.statusCode).toBe(400)
      const dup = await call('POST', '', { name: 'Dup', utmCampaign: 'dup-code' })
      expect(dup.statusCode).toBe(409)
      expect(dup.json().error.message).toContain('dup-code')
    })

    it('lets a read-only key read but not write', async () => {
      const c = await create()
      const ro = await makeApiKey(db.current.sql, tenant, 'read_only')
      expect((await call('GET', `/${c.id}`, undefined, { key: ro.key })).statusCode).toBe(200)
      expect((await call('PUT', `/${c.id}/draft`, { data: {} }, { key: ro.key })).statusCode).toBe(403)
    })
  })

  describe('security: another tenant', () => {
    it("can neither read nor change this tenant's campaign, draft, snapshots or publications (404), and nothing changes", async () => {
      const c = await create()
      await call('PUT', `/${c.id}/draft`, { data: { name: 'Mine' } })
      const snap = (await call('POST', `/${c.id}/snapshots`, { label: 'mine' })).json()
      const before = await fingerprint(tenant.id)
      const rows = await rowsOf(tenant.id)
      const key = other.adminKey
      for (const [method, url, body] of [
        ['GET', `/${c.id}`], ['PATCH', `/${c.id}`, { name: 'Stolen' }], ['POST', `/${c.id}/status`, { status: 'active' }], ['DELETE', `/${c.id}`],
        ['POST', `/${c.id}/restore`], ['GET', `/${c.id}/draft`], ['PUT', `/${c.id}/draft`, { data: { name: 'x' } }], ['DELETE', `/${c.id}/draft`],
        ['POST', `/${c.id}/draft/publish`], ['POST', `/${c.id}/snapshots`, { label: 'theirs' }], ['GET', `/${c.id}/snapshots`],
        ['GET', `/${c.id}/snapshots/diff?from=${snap.id}`], ['POST', `/${c.id}/snapshots/${snap.id}/rollback`],
        ['PUT', `/${c.id}/publications/meta`, { status: 'published' }], ['GET', `/${c.id}/publications`], ['GET', `/${c.id}/history`],
      ] as [Method, string, unknown?][]) {
        const res = await call(method, url, body, { key })
        expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(404)
      }
      expect((await call('GET', '', undefined, { key })).json().data.map((x: { id: string }) => x.id)).not.toContain(c.id)
      expect(await fingerprint(tenant.id)).toBe(before)
      expect(await rowsOf(tenant.id)).toBe(rows)
    })

    it("refuses a campaign pointing at another tenant's product (404) and creates nothing", async () => {
      const theirs = await app.inject({ method: 'POST', url: '/v1/products', headers: bearer(other.adminKey), payload: { name: 'Their product' } })
      const before = await rowsOf(tenant.id)
      const res = await call('POST', '', { name: 'Mine', productId: theirs.json().id })
      expect(res.statusCode).toBe(404)
      expect(await rowsOf(tenant.id)).toBe(before)
    })
  })
})
