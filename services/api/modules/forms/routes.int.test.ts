import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import type { App } from '../../../../lib/http/create-server.js'

const CONTACT_FORM = {
  name: 'Contact',
  fields: [
    { name: 'name', label: 'Name', type: 'text', required: true },
    { name: 'email', label: 'Email', type: 'email', required: true },
    { name: 'phone', label: 'Phone', type: 'phone' },
  ],
  allowedOrigins: ['https://Clinic.Example:443'],
  defaultCountry: 'MX',
  redirectUrl: 'https://clinic.example/thanks',
}

describe('forms API', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
  })
  afterAll(() => app.close())
  const create = (payload: unknown, key = tenant.adminKey) => app.inject({ method: 'POST', url: '/v1/forms', headers: bearer(key), payload: payload as object })

  it('creates a form with a public key, canonical origins and inferred lead fields, and lists it', async () => {
    const res = await create(CONTACT_FORM)
    expect(res.statusCode).toBe(201)
    const form = res.json()
    expect(form).toMatchObject({
      name: 'Contact', status: 'active', allowedOrigins: ['https://clinic.example'], defaultCountry: 'MX', honeypotField: 'website', minFillSeconds: 3,
      publicKey: expect.stringMatching(/^wf_[0-9a-f]{32}$/), archivedAt: null, createdBy: expect.stringMatching(/^api_key:/),
    })
    expect(form.submitPath).toBe(`/forms/${form.publicKey}/submissions`)
    expect(form.fields.map((f: { maps_to: string | null }) => f.maps_to)).toEqual(['name', 'email', 'phone'])

    const list = await app.inject({ method: 'GET', url: '/v1/forms', headers: bearer(tenant.adminKey) })
    expect(list.json().data.map((f: { id: string }) => f.id)).toContain(form.id)
    const audit = await db.current.owner`select action from core.audit_log where tenant_id = ${tenant.id} and target_id = ${form.id}`
    expect(audit).toEqual([{ action: 'form.created' }])
  })

  it('updates a form: omitted properties stay, null clears, and the merged form is checked whole', async () => {
    const form = (await create(CONTACT_FORM)).json()
    const patch = (payload: unknown) => app.inject({ method: 'PATCH', url: `/v1/forms/${form.id}`, headers: bearer(tenant.adminKey), payload: payload as object })
    const updated = await patch({ name: 'Contact us', redirectUrl: null, consent: { required: true, text: 'I agree', policyVersion: 'v2' } })
    expect(updated.statusCode).toBe(200)
    expect(updated.json()).toMatchObject({ name: 'Contact us', redirectUrl: null, defaultCountry: 'MX', consent: { required: true, policyVersion: 'v2' } })
    expect(updated.json().publicKey).toBe(form.publicKey)

    // A honeypot named like an existing field only fails against the stored fields.
    const clash = await patch({ honeypotField: 'phone' })
    expect(clash.statusCode).toBe(400)
    expect(clash.json().error.details.map((d: { path: string }) => d.path)).toEqual(['fields.2.name'])
  })

  it('archives a form idempotently; an archived form cannot be changed', async () => {
    const form = (await create(CONTACT_FORM)).json()
    const first = await app.inject({ method: 'DELETE', url: `/v1/forms/${form.id}`, headers: bearer(tenant.adminKey) })
    expect(first.json()).toMatchObject({ status: 'archived', archivedAt: expect.any(String) })
    const again = await app.inject({ method: 'DELETE', url: `/v1/forms/${form.id}`, headers: bearer(tenant.adminKey) })
    expect(again.json().archivedAt).toBe(first.json().archivedAt)
    const patch = await app.inject({ method: 'PATCH', url: `/v1/forms/${form.id}`, headers: bearer(tenant.adminKey), payload: { name: 'x' } })
    expect(patch.statusCode).toBe(410)
    const active = await app.inject({ method: 'GET', url: '/v1/forms', headers: bearer(tenant.adminKey) })
    expect(active.json().data.map((f: { id: string }) => f.id)).not.toContain(form.id)
    const all = await app.inject({ method: 'GET', url: '/v1/forms?includeArchived=true', headers: bearer(tenant.adminKey) })
    expect(all.json().data.map((f: { id: string }) => f.id)).toContain(form.id)
  })

  describe('errors', () => {
    it.each<[string, Record<string, unknown>, string]>([
      ['a field type that does not exist', { fields: [{ name: 'x', label: 'X', type: 'date' }] }, 'fields.0.type'],
      ['a bad field name', { fields: [{ name: 'First Name', label: 'X', type: 'text' }] }, 'fields.0.name'],
      ['a select without options', { fields: [{ name: 'plan', label: 'Plan', type: 'select' }] }, 'fields.0.options'],
      ['a limit on the wrong type', { fields: [{ name: 'age', label: 'Age', type: 'text', min: 3 }] }, 'fields.0.min'],
      ['two fields with one name', { fields: [{ name: 'a', label: 'A', type: 'text' }, { name: 'a', label: 'B', type: 'text' }] }, 'fields.1.name'],
      ['a reserved field name', { fields: [{ name: 'utm_source', label: 'A', type: 'text' }] }, 'fields.0.name'],
      ['an origin with a path', { allowedOrigins: ['https://clinic.example/form'] }, 'allowedOrigins.0'],
      ['a plain-http origin', { allowedOrigins: ['http://clinic.example'] }, 'allowedOrigins.0'],
      ['an unknown country', { defaultCountry: 'XX' }, 'defaultCountry'],
      ['a javascript: redirect', { redirectUrl: 'javascript:alert(1)' }, 'redirectUrl'],
      ['an unknown property', { colour: 'blue' }, ''],
    ])('refuses %s with 400 naming it', async (_story, change, path) => {
      const before = await db.current.owner`select count(*)::int as n from marketing.forms where tenant_id = ${tenant.id}`
      const res = await create({ ...CONTACT_FORM, ...change })
      expect(res.statusCode).toBe(400)
      expect(res.json().error.details.map((d: { path: string }) => d.path)).toContain(path)
      expect(await db.current.owner`select count(*)::int as n from marketing.forms where tenant_id = ${tenant.id}`).toEqual(before)
    })

    it('answers 404 for a form that does not exist and 403 to a read-only key that writes', async () => {
      const missing = await app.inject({ method: 'GET', url: '/v1/forms/6f1c1a60-4c7d-4c43-9a57-4f7f6a1e0c11', headers: bearer(tenant.adminKey) })
      expect(missing.statusCode).toBe(404)
      const reader = await makeApiKey(db.current.sql, tenant, 'read_only')
      expect((await create(CONTACT_FORM, reader.key)).statusCode).toBe(403)
    })
  })

  describe('security: another tenant', () => {
    it("can neither see, change nor archive this tenant's forms", async () => {
      const form = (await create(CONTACT_FORM)).json()
      const other = await makeTenant(db.current.sql)
      const as = bearer(other.adminKey)
      expect((await app.inject({ method: 'GET', url: '/v1/forms', headers: as })).json().data).toEqual([])
      expect((await app.inject({ method: 'GET', url: `/v1/forms/${form.id}`, headers: as })).statusCode).toBe(404)
      expect((await app.inject({ method: 'GET', url: `/v1/forms/${form.id}/submissions`, headers: as })).statusCode).toBe(404)
      expect((await app.inject({ method: 'PATCH', url: `/v1/forms/${form.id}`, headers: as, payload: { name: 'hijacked' } })).statusCode).toBe(404)
      expect((await app.inject({ method: 'DELETE', url: `/v1/forms/${form.id}`, headers: as })).statusCode).toBe(404)
      const [row] = await db.current.owner`select name, status from marketing.forms where id = ${form.id}`
      expect(row).toEqual({ name: 'Contact', status: 'active' })
    })
  })
})
