import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SecretBox } from '../../../../lib/crypto.js'
import type { App } from '../../../../lib/http/create-server.js'
import { openAccessToken } from '../../../../domains/campaigns/catalog.js'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'
const SECRETS_KEY = '7'.repeat(64)

/** The campaign builder's catalog: products and images, creatives, platform integrations, AI generation history. */
describe('campaign catalog API (products, creatives, platform integrations, AI generations)', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let other: TestTenant
  beforeAll(async () => {
    app = await buildTestApi(db.current, { SECRETS_KEY })
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
  })
  afterAll(() => app.close())

  const call = (method: Method, url: string, payload?: unknown, key = tenant.adminKey) =>
    app.inject({ method, url: `/v1${url}`, headers: bearer(key), ...(payload === undefined ? {} : { payload: payload as object }) })
  const ok = async (method: Method, url: string, payload?: unknown, status = 200) => {
    const res = await call(method, url, payload)
    expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(status)
    return res.json()
  }
  const tenantRows = async (tenantId: string) => JSON.stringify(await db.current.owner`
    select 'p' as t, id::text, name as v, updated_at from campaigns.products where tenant_id = ${tenantId}
    union all select 'i', id::text, url || is_primary::text, created_at from campaigns.product_images where tenant_id = ${tenantId}
    union all select 'k', id::text, title || version::text, updated_at from campaigns.creatives where tenant_id = ${tenantId}
    union all select 'a', id::text, url, created_at from campaigns.creative_assets where tenant_id = ${tenantId}
    union all select 'g', id::text, status || coalesce(access_token_sealed, ''), updated_at from campaigns.platform_integrations where tenant_id = ${tenantId}
    union all select 'x', id::text, prompt, created_at from campaigns.ai_generations where tenant_id = ${tenantId}
    order by 1, 2`)

  describe('products and images', () => {
    it('adds a product with exact price and UTM codes; the first image is primary, a new primary takes over, backgrounds hang off an image', async () => {
      const p = await ok('POST', '/products', { name: 'Clareamento', sku: 'CLR-1', price: '899.90', currency: 'BRL', url: 'https://example.com/clr', utm: { source: 'meta', medium: 'cpc' } }, 201)
      expect(p).toMatchObject({ price: '899.90', currency: 'BRL', utm: { source: 'meta', medium: 'cpc' }, images: [] })
      const front = await ok('POST', `/products/${p.id}/images`, { url: 'https://cdn.example.com/front.jpg' }, 201)
      expect(front.isPrimary).toBe(true)
      const side = await ok('POST', `/products/${p.id}/images`, { url: 'https://cdn.example.com/side.jpg', primary: true }, 201)
      const bg = await ok('POST', `/products/${p.id}/images`, { url: 'https://cdn.example.com/side-bg.png', kind: 'background', parentImageId: side.id }, 201)
      const detail = await ok('GET', `/products/${p.id}`)
      expect(detail.images.map((i: { id: string; isPrimary: boolean }) => [i.id, i.isPrimary])).toEqual([[side.id, true], [front.id, false], [bg.id, false]])
      await ok('POST', `/products/${p.id}/images/${front.id}/primary`)
      expect((await ok('GET', `/products/${p.id}`)).images.filter((i: { isPrimary: boolean }) => i.isPrimary).map((i: { id: string }) => i.id)).toEqual([front.id])
      expect((await call('POST', `/products/${p.id}/images/${bg.id}/primary`)).statusCode).toBe(409)
      expect((await call('DELETE', `/products/${p.id}/images/${side.id}`)).statusCode).toBe(204)
      expect((await ok('GET', `/products/${p.id}`)).images.map((i: { id: string }) => i.id)).toEqual([front.id])
      expect((await ok('DELETE', `/products/${p.id}`)).deletedAt).not.toBeNull()
      expect((await ok('POST', `/products/${p.id}/restore`)).deletedAt).toBeNull()
    })

    it.each([
      ['a negative price', { price: -1, currency: 'BRL' }],
      ['an unknown currency', { price: '1', currency: 'ABC' }],
      ['a price without currency', { price: '1' }],
      ['a non-http url', { url: 'javascript:alert(1)' }],
      ['an unknown UTM field', { utm: { campaign: 'x', gclid: 'y' } }],
    ])('refuses %s (400)', async (_n, body) => {
      const before = await tenantRows(tenant.id)
      expect((await call('POST', '/products', { name: 'Bad', ...body })).statusCode).toBe(400)
      expect(await tenantRows(tenant.id)).toBe(before)
    })

    it('refuses a duplicate SKU with 409 naming it', async () => {
      await ok('POST', '/products', { name: 'A', sku: 'DUP-1' }, 201)
      const res = await call('POST', '/products', { name: 'B', sku: 'DUP-1' })
      expect(res.statusCode).toBe(409)
      expect(res.json().error.message).toContain('DUP-1')
    })
  })

  describe('creatives', () => {
    it('keeps every saved version, refuses a stale one (409 with currentVersion), and holds assets', async () => {
      const c = await ok('POST', '/creatives', { title: 'Feed 1:1', format: 'image', width: 1080, height: 1080, elements: [{ type: 'text', x: 10, y: 10, width: 500, height: 80, text: '40% off' }] }, 201)
      expect(c.version).toBe(1)
      const v2 = await ok('PATCH', `/creatives/${c.id}`, { elements: [{ type: 'text', x: 20, y: 10, width: 500, height: 80, text: '50% off' }], version: 1 })
      expect(v2.version).toBe(2)
      const stale = await call('PATCH', `/creatives/${c.id}`, { title: 'Late', version: 1 })
      expect(stale.statusCode).toBe(409)
      expect(stale.json().error.details).toEqual({ currentVersion: 2 })
      const versions = (await ok('GET', `/creatives/${c.id}/versions`)).data
      expect(versions.map((v: { version: number; elements: { text: string }[] }) => [v.version, v.elements[0]!.text])).toEqual([[2, '50% off'], [1, '40% off']])
      const asset = await ok('POST', `/creatives/${c.id}/assets`, { kind: 'image', url: 'https://cdn.example.com/a.png', mimeType: 'image/png', bytes: 123456 }, 201)
      expect((await ok('GET', `/creatives/${c.id}`)).assets).toEqual([expect.objectContaining({ id: asset.id, bytes: 123456 })])
      expect((await call('POST', '/creatives', { title: 'x', format: 'hologram', width: 1, height: 1 })).statusCode).toBe(400)
    })
  })

  describe('platform integrations', () => {
    it('seals tokens as the WhatsApp tokens are (SECRETS_KEY), never returns them, and drops them on disconnect', async () => {
      const res = await call('POST', '/platform-integrations', { platform: 'meta', accountId: 'act_123', label: 'Clinic ads', accessToken: 'EAAG-meta-access-token-xyz', refreshToken: 'refresh-token-abc' })
      expect(res.statusCode, res.body).toBe(201)
      expect(res.body).not.toContain('EAAG-meta-access-token-xyz')
      expect(res.body).not.toContain('refresh-token-abc')
      const g = res.json()
      expect(g).toMatchObject({ hasAccessToken: true, hasRefreshToken: true, status: 'active' })
      const [row] = await db.current.owner<{ sealed: string }[]>`select access_token_sealed as sealed from campaigns.platform_integrations where id = ${g.id}`
      expect(row!.sealed).toMatch(/^v1\./)
      expect(SecretBox.fromConfig(SECRETS_KEY).open(row!.sealed)).toBe('EAAG-meta-access-token-xyz')
      expect(await openAccessToken(db.current.sql, SecretBox.fromConfig(SECRETS_KEY), tenant.id, g.id)).toBe('EAAG-meta-access-token-xyz')
      const list = await call('GET', '/platform-integrations')
      expect(list.body).not.toContain('v1.')
      expect((await call('POST', '/platform-integrations', { platform: 'meta', accountId: 'act_123', accessToken: 'EAAG-rotated-token-000' })).statusCode).toBe(200)
      const audit = await db.current.owner<{ details: unknown }[]>`select details from core.audit_log where target_id = ${g.id}`
      expect(JSON.stringify(audit)).not.toContain('EAAG')
      const gone = await ok('DELETE', `/platform-integrations/${g.id}`)
      expect(gone).toMatchObject({ status: 'disconnected', hasAccessToken: false, hasRefreshToken: false })
      expect((await call('PATCH', `/platform-integrations/${g.id}`, { accessToken: 'EAAG-after-disconnect' })).statusCode).toBe(409)
    })
  })

  describe('AI generations', () => {
    it('records prompt, service, exact cost and timing, and totals them', async () => {
      const at = Date.parse('2026-11-01T12:00:00Z')
      for (const [i, cost] of ['0.001200', '0.0004'].entries()) {
        const start = at + i * 60_000
        await ok('POST', '/ai-generations', { type: 'headline', prompt: 'Three headlines for teeth whitening', service: 'openai', model: 'gpt-4o-mini', cost, inputTokens: 120, outputTokens: 40, startedAt: new Date(start).toISOString(), completedAt: new Date(start + 1850).toISOString(), output: { headlines: ['a', 'b', 'c'] } }, 201)
      }
      const list = await ok('GET', '/ai-generations?type=headline')
      expect(list.data[0]).toMatchObject({ durationMs: 1850, cost: '0.000400', service: 'openai' })
      expect(list.totals).toEqual([{ costCurrency: 'USD', count: 2, cost: '0.001600', durationMs: 3700 }])
      expect((await call('POST', '/ai-generations', { type: 'copy', prompt: 'x', service: 's', startedAt: new Date(at).toISOString(), completedAt: new Date(at - 1).toISOString() })).statusCode).toBe(400)
    })
  })

  describe('security: another tenant', () => {
    it("can neither read nor change this tenant's products, images, creatives, integrations or AI history (404), and nothing changes", async () => {
      const p = await ok('POST', '/products', { name: 'Mine' }, 201)
      const img = await ok('POST', `/products/${p.id}/images`, { url: 'https://cdn.example.com/mine.jpg' }, 201)
      const c = await ok('POST', '/creatives', { title: 'Mine', format: 'image', width: 1, height: 1 }, 201)
      const asset = await ok('POST', `/creatives/${c.id}/assets`, { kind: 'logo', url: 'https://cdn.example.com/logo.svg' }, 201)
      const g = await ok('POST', '/platform-integrations', { platform: 'google', accountId: '123-456-7890', accessToken: 'ya29.secret-token' }, 201)
      const before = await tenantRows(tenant.id)
      for (const [method, url, body] of [
        ['GET', `/products/${p.id}`], ['PATCH', `/products/${p.id}`, { name: 'x' }], ['DELETE', `/products/${p.id}`], ['POST', `/products/${p.id}/restore`],
        ['POST', `/products/${p.id}/images`, { url: 'https://x.example.com/a.png' }], ['POST', `/products/${p.id}/images/${img.id}/primary`], ['DELETE', `/products/${p.id}/images/${img.id}`],
        ['GET', `/creatives/${c.id}`], ['PATCH', `/creatives/${c.id}`, { title: 'x' }], ['DELETE', `/creatives/${c.id}`], ['GET', `/creatives/${c.id}/versions`],
        ['POST', `/creatives/${c.id}/assets`, { kind: 'image', url: 'https://x.example.com/a.png' }], ['DELETE', `/creatives/${c.id}/assets/${asset.id}`],
        ['GET', `/platform-integrations/${g.id}`], ['PATCH', `/platform-integrations/${g.id}`, { label: 'x' }], ['DELETE', `/platform-integrations/${g.id}`],
        ['POST', '/ai-generations', { type: 'copy', prompt: 'x', service: 's', campaignId: null, creativeId: c.id, startedAt: '2026-01-01T00:00:00Z', completedAt: '2026-01-01T00:00:01Z' }],
      ] as [Method, string, unknown?][]) {
        const res = await call(method, url, body, other.adminKey)
        expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(404)
      }
      for (const url of ['/products', '/creatives', '/platform-integrations', '/ai-generations']) {
        const body = (await call('GET', url, undefined, other.adminKey)).body
        for (const id of [p.id, c.id, g.id]) expect(body, url).not.toContain(id)
      }
      expect((await call('GET', '/products', undefined, other.adminKey)).json().data.map((x: { id: string }) => x.id)).not.toContain(p.id)
      expect(await openAccessToken(db.current.sql, SecretBox.fromConfig(SECRETS_KEY), other.id, g.id)).toBeNull()
      expect(await tenantRows(tenant.id)).toBe(before)
    })
  })
})
