import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../lib/http/create-server.js'
import { bearer, buildTestApi } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { legacyDump } from '../../test/fixtures/legacy-local-storage.js'

describe('POST /v1/campaigns/import/local-storage: the old builder\'s browser dump', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
  })
  afterAll(() => app.close())

  const importDump = (dump: unknown, t: TestTenant = tenant) =>
    app.inject({ method: 'POST', url: '/v1/campaigns/import/local-storage', headers: bearer(t.adminKey), payload: dump as object })
  /** Every campaigns row of the tenant, as text: equal before and after means nothing changed. */
  const everything = async (tenantId: string) => JSON.stringify(await db.current.owner`
    select 'c' as t, id, name, status, budget::text, currency, config::text, version, product_id, utm_campaign, legacy_key, starts_at from campaigns.campaigns where tenant_id = ${tenantId}
    union all select 'p', id, name, null, price::text, currency, utm::text, null, null, sku, legacy_key, null from campaigns.products where tenant_id = ${tenantId}
    union all select 'i', id, url, kind, null, null, null, null, product_id, parent_image_id::text, legacy_key, null from campaigns.product_images where tenant_id = ${tenantId}
    union all select 'd', campaign_id, step, null, null, null, data::text, base_version, null, null, null, saved_at from campaigns.campaign_drafts where tenant_id = ${tenantId}
    union all select 'l', target_id, legacy_key, target_type, null, null, null, null, null, null, null, null from campaigns.legacy_imports where tenant_id = ${tenantId}
    order by 1, 2, 3`)
  const outcomes = (entries: { key: string; legacyId?: string; outcome: string }[]) =>
    Object.fromEntries(entries.map((e) => [`${e.key}${e.legacyId && !e.key.endsWith(e.legacyId) ? `#${e.legacyId}` : ''}`, e.outcome]))

  it('imports a realistic dump, reporting every key and item with its reason', async () => {
    const res = await importDump(legacyDump)
    expect(res.statusCode, res.body).toBe(200)
    const report = res.json()
    expect(outcomes(report.entries)).toEqual({
      'products#prod_1': 'imported', 'products#prod_2': 'imported', 'products#prod_3': 'refused',
      'backgrounds#bg_1': 'imported', 'backgrounds#bg_2': 'refused',
      'campaigns#cmp_1699999999001': 'imported', 'campaigns#cmp_1699999999002': 'imported',
      'saved_campaigns#cmp_1699999999001': 'skipped', 'saved_campaigns#cmp_1699999999003': 'refused', 'saved_campaigns#cmp_1699999999004': 'refused',
      campaign_minimal_cmp_1699999999001: 'skipped', campaign_minimal_cmp_1699999999005: 'imported',
      campaign_draft_cmp_1699999999002: 'imported', campaign_draft_new_1700000000000: 'imported',
      sample_data: 'skipped', 'ui:theme': 'skipped',
    })
    expect(report.summary).toEqual({ imported: 8, skipped: 4, refused: 4 })
    const reason = (key: string, id?: string) => report.entries.find((e: { key: string; legacyId?: string }) => e.key === key && (!id || e.legacyId === id)).reason
    expect(reason('products', 'prod_3')).toBe('a price needs its currency')
    expect(reason('backgrounds', 'bg_2')).toContain('prod_404')
    expect(reason('saved_campaigns', 'cmp_1699999999003')).toContain('ISO 4217')
    expect(reason('saved_campaigns', 'cmp_1699999999004')).toContain('negative')
    expect(reason('sample_data')).toContain('demo')

    // What the rows became, in our vocabulary.
    const [bf] = await db.current.owner<{ id: string; type: string; status: string; budget: string; currency: string; productId: string; startsAt: Date; config: { platforms: unknown[]; audience: unknown; creative: unknown } }[]>`
      select id, type, status, budget::text, currency, product_id, starts_at, config from campaigns.campaigns where tenant_id = ${tenant.id} and legacy_key = 'campaign:cmp_1699999999001'`
    expect(bf).toMatchObject({ type: 'lead_generation', status: 'active', budget: '4500.00', currency: 'BRL', startsAt: new Date('2026-11-20T00:00:00Z') })
    expect(bf!.config.platforms).toEqual([{ platform: 'meta' }, { platform: 'google', placements: ['search'] }])
    expect(bf!.config.audience).toEqual({ locations: ['São Paulo, BR', 'Campinas, BR'], ageMin: 25, ageMax: 60, genders: ['all'], interests: ['dentistry', 'aesthetics'] })
    expect(bf!.config.creative).toMatchObject({ headline: 'Clareamento com 40% off', callToAction: 'Enviar mensagem', landingUrl: 'https://sorriso.example.com/bf' })
    const [product] = await db.current.owner<{ id: string; price: string; utm: unknown }[]>`select id, price::text, utm from campaigns.products where legacy_key = 'product:prod_1' and tenant_id = ${tenant.id}`
    expect(bf!.productId).toBe(product!.id)
    expect(product).toMatchObject({ price: '899.90', utm: { source: 'meta', medium: 'paid_social', campaign: 'bf-sorriso-2026' } })
    const images = await db.current.owner<{ url: string; kind: string; isPrimary: boolean; parentUrl: string | null }[]>`
      select i.url, i.kind, i.is_primary, p.url as parent_url from campaigns.product_images i left join campaigns.product_images p on p.id = i.parent_image_id
       where i.product_id = ${product!.id} order by i.kind, i.position`
    expect(images).toEqual([
      { url: 'https://cdn.example.com/clr-side-bg-blue.png', kind: 'background', isPrimary: false, parentUrl: 'https://cdn.example.com/clr-side.jpg' },
      { url: 'https://cdn.example.com/clr-front.jpg', kind: 'image', isPrimary: false, parentUrl: null },
      { url: 'https://cdn.example.com/clr-side.jpg', kind: 'image', isPrimary: true, parentUrl: null },
    ])
    const [remarketing] = await db.current.owner<{ type: string; status: string; budget: string; config: { publish: unknown } }[]>`
      select type, status, budget::text, config from campaigns.campaigns where legacy_key = 'campaign:cmp_1699999999002' and tenant_id = ${tenant.id}`
    expect(remarketing).toMatchObject({ type: 'sales', status: 'active', budget: '1250.00', config: { publish: { mode: 'scheduled', publishAt: '2026-12-01T15:00:00.000Z', timezone: 'America/Sao_Paulo' } } })
    // The draft of a campaign never saved became a draft campaign with its draft, so nothing typed is lost.
    const drafts = await db.current.owner<{ name: string; step: string; data: { name: string } }[]>`
      select c.name, d.step, d.data from campaigns.campaign_drafts d join campaigns.campaigns c on c.id = d.campaign_id where d.tenant_id = ${tenant.id} order by c.name`
    expect(drafts).toEqual([
      { name: 'Implantes – remarketing', step: '3', data: { name: 'Implantes – remarketing v2', budget: '1500.00' } },
      { name: 'Ortodontia jovem', step: 'audience', data: { name: 'Ortodontia jovem', audience: { ageMin: 14 } } },
    ])
  })

  it('changes nothing when the same dump is imported again, even after the imported rows were edited or their drafts published', async () => {
    const [remarketing] = await db.current.owner<{ id: string }[]>`select id from campaigns.campaigns where legacy_key = 'campaign:cmp_1699999999002' and tenant_id = ${tenant.id}`
    const published = await app.inject({ method: 'POST', url: `/v1/campaigns/${remarketing!.id}/draft/publish`, headers: bearer(tenant.adminKey) })
    expect(published.statusCode, published.body).toBe(200)
    const before = await everything(tenant.id)
    const res = await importDump(legacyDump)
    expect(res.statusCode).toBe(200)
    expect(res.json().summary).toEqual({ imported: 0, skipped: 12, refused: 4 })
    expect(res.json().entries.filter((e: { reason?: string }) => e.reason?.startsWith('imported before')).length).toBe(8)
    expect(await everything(tenant.id)).toBe(before)
  })

  it.each([
    ['a list key that is not JSON', { campaigns: '[{"id": 1,' }, 'campaigns'],
    ['a list key that is not an array', { products: '{"prod_1": {"name": "x"}}' }, 'products'],
    ['an item without an id', { campaigns: JSON.stringify([{ id: 'a', name: 'A' }, { name: 'B' }]) }, 'campaigns.1.id'],
    ['a draft that is not an object', { campaign_draft_x: '[1, 2]' }, 'campaign_draft_x'],
  ])('refuses a dump with %s (400 naming the key), writing nothing', async (_name, dump, key) => {
    const t = await makeTenant(db.current.sql)
    const res = await importDump({ ...dump, products: (dump as Record<string, string>).products ?? JSON.stringify([{ id: 'p', name: 'P' }]) }, t)
    expect(res.statusCode, res.body).toBe(400)
    expect(res.json().error.details[0].path).toBe(key)
    expect(res.json().error.message).toContain(key)
    expect(await everything(t.id)).toBe('[]')
  })

  it('keeps tenants apart: the same dump imported by another tenant is imported afresh there', async () => {
    const t = await makeTenant(db.current.sql)
    const res = await importDump(legacyDump, t)
    expect(res.json().summary).toEqual({ imported: 8, skipped: 4, refused: 4 })
    const ids = res.json().entries.filter((e: { target?: unknown }) => e.target).map((e: { target: { id: string } }) => e.target.id)
    const [mine] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from campaigns.legacy_imports where tenant_id = ${tenant.id} and target_id = any(${ids}::uuid[])`
    expect(mine!.n).toBe(0)
  })
})
