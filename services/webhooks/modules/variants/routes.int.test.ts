import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../../../lib/http/create-server.js'
import type { SiteKeyView } from '../../../../domains/analytics/schemas.js'
import { archiveSiteKey } from '../../../../domains/analytics/service.js'
import { ExperimentDefinitions } from '../../../../domains/experiments/definitions-cache.js'
import { bucketUnit } from '../../../../domains/experiments/hashing.js'
import { pauseExperiment } from '../../../../domains/experiments/service.js'
import { buildTestWebhooks, testConfig, testLogger } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeSiteKey } from '../../../../test/factories/analytics-rows.js'
import { makeExperiment } from '../../../../test/factories/experiments-rows.js'
import { makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'

const ORIGIN = 'https://clinic.example'

describe('POST /v1/variants: experiment variations for website visitors, by site key', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let other: TestTenant
  let siteKey: SiteKeyView
  let otherKey: SiteKeyView
  beforeAll(async () => {
    app = await buildTestWebhooks(db.current)
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
    siteKey = await makeSiteKey(db.current.sql, tenant, { allowedOrigins: [ORIGIN] })
    otherKey = await makeSiteKey(db.current.sql, other, { allowedOrigins: [ORIGIN] })
    await makeExperiment(db.current.sql, tenant, { key: 'landing-hero', unit: 'anonymous', variations: [{ key: 'photo', weight: 0.5, value: { hero: 'photo.jpg' } }, { key: 'video', weight: 0.5, value: { hero: 'clip.mp4' } }] })
    await makeExperiment(db.current.sql, tenant, { key: 'mobile-only', unit: 'anonymous', targeting: { attribute: 'device', op: 'eq', value: 'mobile' } })
    // Lead experiments need a lead: a visitor is not in them.
    await makeExperiment(db.current.sql, tenant, { key: 'bot-greeting' })
  })
  afterAll(() => app.close())

  const ask = (body: unknown, headers: Record<string, string> = { origin: ORIGIN }, key = siteKey.publicKey) =>
    app.inject({ method: 'POST', url: `/v1/variants?siteKey=${key}`, headers, payload: body as object })
  const stored = async (tenantId: string) => (await db.current.owner<{ n: number }[]>`select count(*)::int as n from experiments.assignments where tenant_id = ${tenantId}`)[0]!.n

  it("answers the visitor's variations with CORS for the key's origin, stores them, and answers the same ones again", async () => {
    const res = await ask({ anonymousId: 'visitor-1', attributes: { device: 'mobile' } })
    expect(res.statusCode).toBe(200)
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN)
    const got = res.json().assignments
    expect(got.map((a: { experimentKey: string }) => a.experimentKey)).toEqual(['landing-hero', 'mobile-only'])
    const hero = got[0]
    expect(hero.variationIndex).toBe(bucketUnit({ seed: 'landing-hero', hashVersion: 2, coverage: 1, weights: [0.5, 0.5], namespace: null }, 'visitor-1'))
    expect(hero.value).toEqual(hero.variationKey === 'photo' ? { hero: 'photo.jpg' } : { hero: 'clip.mp4' })
    expect(got.every((a: { isNew: boolean }) => a.isNew)).toBe(true)
    const again = (await ask({ anonymousId: 'visitor-1', attributes: {} })).json().assignments
    expect(again.map((a: { variationKey: string; isNew: boolean }) => [a.variationKey, a.isNew])).toEqual(got.map((a: { variationKey: string }) => [a.variationKey, false]))
    const [row] = await db.current.owner<{ source: string; leadId: string | null }[]>`select source, lead_id from experiments.assignments where unit_id = 'visitor-1' limit 1`
    expect(row).toEqual({ source: 'site', leadId: null })
  })

  it('answers a browser preflight from an allowed origin', async () => {
    const res = await app.inject({ method: 'OPTIONS', url: `/v1/variants?siteKey=${siteKey.publicKey}`, headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } })
    expect(res.statusCode).toBe(204)
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN)
  })

  it.each<[string, () => Promise<{ statusCode: number; json: () => { error: { code: string } } }>, number]>([
    ['no site key', () => app.inject({ method: 'POST', url: '/v1/variants', headers: { origin: ORIGIN }, payload: { anonymousId: 'v' } }), 401],
    ['an unknown site key', () => ask({ anonymousId: 'v' }, { origin: ORIGIN }, `ws_${'0'.repeat(32)}`), 404],
    ['an origin the key does not list', () => ask({ anonymousId: 'v' }, { origin: 'https://evil.example' }), 403],
    ['no anonymousId', () => ask({ attributes: {} }), 400],
    ['a leadId (a page cannot claim to be a lead)', () => ask({ anonymousId: 'v', leadId: '00000000-0000-4000-8000-000000000000' }), 400],
    ['an anonymousId too long', () => ask({ anonymousId: 'v'.repeat(201) }), 400],
  ])('refuses %s and stores nothing', async (_, run, status) => {
    const before = await stored(tenant.id)
    const res = await run()
    expect(res.statusCode).toBe(status)
    expect(await stored(tenant.id)).toBe(before)
  })

  it('refuses an archived site key with 410', async () => {
    const key = await makeSiteKey(db.current.sql, tenant, { allowedOrigins: [ORIGIN] })
    await archiveSiteKey(db.current.sql, { tenantId: tenant.id, actor: 'test', requestId: null }, key.id)
    // The intake caches keys for up to 30 s; a fresh process (this test's key was never looked up) sees the archive at once.
    expect((await ask({ anonymousId: 'v' }, { origin: ORIGIN }, key.publicKey)).statusCode).toBe(410)
  })

  it('decides from the definitions cache, and a paused experiment leaves the answers at once', async () => {
    // A real cache, counted: the route asks it for the tenant's experiments instead of reading them per request.
    let asked = 0
    class CountedDefinitions extends ExperimentDefinitions {
      override forTenant(tenantId: string) {
        asked++
        return super.forTenant(tenantId)
      }
    }
    const definitions = new CountedDefinitions(db.current.sql, testLogger(), { ttlMs: testConfig().EXPERIMENT_CACHE_TTL_MS })
    await definitions.start()
    const cached = await buildTestWebhooks(db.current, {}, { experimentDefinitions: definitions })
    try {
      const keys = async (anonymousId: string) => (await cached.inject({ method: 'POST', url: `/v1/variants?siteKey=${siteKey.publicKey}`, headers: { origin: ORIGIN },
        payload: { anonymousId, attributes: {} } })).json().assignments.map((a: { experimentKey: string }) => a.experimentKey)
      const hero = await makeExperiment(db.current.sql, tenant, { key: 'cached-hero', unit: 'anonymous' })
      expect(await keys('cached-visitor-1')).toContain('cached-hero')
      expect(asked).toBeGreaterThan(0)
      await pauseExperiment(db.current.sql, { tenantId: tenant.id, actor: 'test', requestId: null }, hero.id)
      expect(await keys('cached-visitor-2')).not.toContain('cached-hero')
    } finally {
      await cached.close()
      await definitions.close()
    }
  })

  describe('security', () => {
    it("gives another tenant's site key none of this tenant's experiments, and never this tenant's stored assignment", async () => {
      await ask({ anonymousId: 'shared-visitor' })
      const res = await ask({ anonymousId: 'shared-visitor' }, { origin: ORIGIN }, otherKey.publicKey)
      expect(res.statusCode).toBe(200)
      expect(res.json().assignments).toEqual([])
      expect(await stored(other.id)).toBe(0)
    })
  })
})
