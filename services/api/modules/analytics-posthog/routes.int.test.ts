import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../../../lib/db.js'
import { recordEvents } from '../../../../domains/analytics/service.js'
import { DEFAULT_POSTHOG_PROPERTIES } from '../../../../domains/analytics/posthog/schemas.js'
import { crontab } from '../../../workers/crontab.js'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'

type App = Awaited<ReturnType<typeof buildTestApi>>
const URL = '/v1/analytics/posthog'

describe('GET/PUT /v1/analytics/posthog and POST /requeue-parked: a tenant opts in to PostHog forwarding', () => {
  const db = useTestDatabase()
  let api: App
  let configured: App
  let tenant: TestTenant
  let other: TestTenant
  let readOnlyKey: string

  const get = (key = tenant.adminKey, app = api) => app.inject({ method: 'GET', url: URL, headers: bearer(key) })
  const put = (body: unknown, key = tenant.adminKey) => api.inject({ method: 'PUT', url: URL, headers: bearer(key), payload: body as object })
  const settingsRows = () => db.current.owner`select * from analytics.posthog_settings order by tenant_id`
  const auditCount = async () => (await db.current.owner<{ n: number }[]>`select count(*)::int as n from core.audit_log where action like 'analytics.posthog%'`)[0]!.n
  const outboxOf = (t: TestTenant) => db.current.owner<{ status: string }[]>`select status from analytics.posthog_outbox where tenant_id = ${t.id}`

  beforeAll(async () => {
    api = await buildTestApi(db.current)
    configured = await buildTestApi(db.current, { POSTHOG_API_KEY: 'phc_operator', POSTHOG_HOST: 'http://127.0.0.1:9' })
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
    readOnlyKey = (await makeApiKey(db.current.sql, tenant, 'read_only')).key
  })
  afterAll(async () => {
    await api?.close()
    await configured?.close()
  })

  it('starts off, with the default allow-list, and says whether the operator configured PostHog', async () => {
    const res = await get(readOnlyKey)
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({
      enabled: false, allowedProperties: [...DEFAULT_POSTHOG_PROPERTIES], customProperties: false, configured: false,
      project: null, outbox: { pending: 0, parked: 0, oldestPendingAt: null, lastError: null },
      personDeletions: { pending: 0, requested: 0, manual: 0, parked: 0, lastError: null }, updatedAt: null, updatedBy: null,
    })
    expect((await get(tenant.adminKey, configured)).json().configured).toBe(true)
  })

  it('lets an admin opt in with an allow-list of its own, audited; events recorded from then on wait in the outbox', async () => {
    const audits = await auditCount()
    const res = await put({ enabled: true, allowedProperties: ['formId', 'plan', 'plan'] })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ enabled: true, allowedProperties: ['formId', 'plan'], customProperties: true, updatedBy: `api_key:${tenant.adminKeyId}` })
    expect(await auditCount()).toBe(audits + 1)
    await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, [{ name: 'lead.created', occurredAt: new Date() }]))
    expect((await get()).json().outbox).toMatchObject({ pending: 1, parked: 0, oldestPendingAt: expect.any(String) })

    // Leaving allowedProperties out keeps the list; null goes back to the default.
    expect((await put({ enabled: true })).json().allowedProperties).toEqual(['formId', 'plan'])
    expect((await put({ enabled: true, allowedProperties: null })).json()).toMatchObject({ allowedProperties: [...DEFAULT_POSTHOG_PROPERTIES], customProperties: false })
  })

  it('drops what is waiting when the tenant opts out', async () => {
    expect((await outboxOf(tenant)).length).toBeGreaterThan(0)
    expect((await put({ enabled: false })).json()).toMatchObject({ enabled: false, outbox: { pending: 0, parked: 0 } })
    expect(await outboxOf(tenant)).toEqual([])
    expect((await put({ enabled: true })).statusCode).toBe(200)
  })

  describe('bad input changes nothing', () => {
    it.each([
      ['an empty body', {}],
      ['enabled as text', { enabled: 'yes' }],
      ['an unknown field', { enabled: true, apiKey: 'phc_x' }],
      ['a phone property', { enabled: true, allowedProperties: ['phone'] }],
      ['an email property under another name', { enabled: true, allowedProperties: ['customerEmail'] }],
      ['a name property', { enabled: true, allowedProperties: ['name'] }],
      ['message text', { enabled: true, allowedProperties: ['text'] }],
      ['the visitor id', { enabled: true, allowedProperties: ['anonymousId'] }],
      ['a page URL', { enabled: true, allowedProperties: ['pageUrl'] }],
      ['a property name with spaces', { enabled: true, allowedProperties: ['my plan'] }],
      ['a property name over 64 characters', { enabled: true, allowedProperties: ['p'.repeat(65)] }],
      ['more than 50 properties', { enabled: true, allowedProperties: Array.from({ length: 51 }, (_, i) => `p${i}`) }],
    ])('refuses %s with 400', async (_name, body) => {
      const [rows, audits] = [await settingsRows(), await auditCount()]
      const res = await put(body)
      expect(res.statusCode).toBe(400)
      expect(res.json()).toMatchObject({ error: { code: 'BAD_REQUEST', requestId: expect.any(String) } })
      expect(await settingsRows()).toEqual(rows)
      expect(await auditCount()).toBe(audits)
    })

    it('names the offending property in details', async () => {
      const res = await put({ enabled: true, allowedProperties: ['formId', 'whatsappPhone'] })
      expect(res.json().error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'allowedProperties.1' })]))
    })

    it('refuses a read-only key with 403, for the settings and the requeue', async () => {
      const rows = await settingsRows()
      expect((await put({ enabled: false }, readOnlyKey)).statusCode).toBe(403)
      expect((await api.inject({ method: 'POST', url: `${URL}/requeue-parked`, headers: bearer(readOnlyKey) })).statusCode).toBe(403)
      expect(await settingsRows()).toEqual(rows)
    })

    it('refuses a missing key with 401', async () => {
      expect((await api.inject({ method: 'GET', url: URL })).statusCode).toBe(401)
    })
  })

  it("keeps tenants apart: another tenant neither sees nor changes this tenant's settings, outbox or parked rows", async () => {
    await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, [{ name: 'lead.created', occurredAt: new Date() }]))
    await db.current.owner`update analytics.posthog_outbox set status = 'parked', last_error = 'PostHog answered 401' where tenant_id = ${tenant.id}`
    const theirs = (await get(other.adminKey)).json()
    expect(theirs).toMatchObject({ enabled: false, outbox: { pending: 0, parked: 0, lastError: null } })
    expect((await put({ enabled: false }, other.adminKey)).statusCode).toBe(200)
    expect((await api.inject({ method: 'POST', url: `${URL}/requeue-parked`, headers: bearer(other.adminKey) })).json()).toEqual({ requeued: 0 })
    expect((await get()).json()).toMatchObject({ enabled: true, outbox: { parked: 1, lastError: 'PostHog answered 401' } })

    const mine = await api.inject({ method: 'POST', url: `${URL}/requeue-parked`, headers: bearer(tenant.adminKey) })
    expect(mine.json()).toEqual({ requeued: 1 })
    expect((await get()).json().outbox).toMatchObject({ pending: 1, parked: 0 })
  })

  it('has a crontab line with an id that drains the outbox every minute', () => {
    expect(crontab).toContain('* * * * * analytics__forward_posthog ?id=forward_posthog&max=1')
  })
})
