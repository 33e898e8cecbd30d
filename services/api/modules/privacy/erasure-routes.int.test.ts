import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../../../lib/db.js'
import type { App } from '../../../../lib/http/create-server.js'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeLead } from '../../../../test/factories/marketing-rows.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { count, drainJobs } from '../../../../test/whatsapp.js'

describe('/v1/privacy/erasure-requests', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let other: TestTenant
  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql, { defaultCountry: 'BR' })
    other = await makeTenant(db.current.sql, { defaultCountry: 'BR' })
  })
  afterAll(() => app.close())

  const post = (payload: unknown, key = tenant.adminKey) =>
    app.inject({ method: 'POST', url: '/v1/privacy/erasure-requests', headers: bearer(key), payload: payload as object })
  const get = (id: string, key = tenant.adminKey) => app.inject({ method: 'GET', url: `/v1/privacy/erasure-requests/${id}`, headers: bearer(key) })
  const nothingChanged = async () => ({
    requests: await count(db.current, 'privacy.erasure_requests'),
    jobs: await count(db.current, 'graphile_worker.jobs', `task_identifier = 'privacy__erase_subject'`),
    leads: await count(db.current, 'marketing.leads'),
    audit: await count(db.current, 'core.audit_log', `action like 'privacy.%'`),
  })

  it('completes an erasure of an unknown lead with an empty, verified receipt', async () => {
    const res = await post({ leadId: randomUUID() })
    expect(res.statusCode).toBe(202)
    expect(res.json()).toMatchObject({ status: 'pending', subjectKind: 'lead' })
    await drainJobs(db.current)
    const view = (await get(res.json().id)).json()
    expect(view).toMatchObject({ status: 'completed', receipt: { tenantId: tenant.id, tables: [], suppressedKeys: 0, verifiedAt: expect.any(String) } })
  })

  it('erases by email and answers a second request for the same person with the first receipt', async () => {
    const lead = await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id, { email: 'second.time@example.org', name: 'Second Time' }))
    const first = await post({ email: 'Second.Time@Example.org' })
    await drainJobs(db.current)
    const receipt = (await get(first.json().id)).json()
    expect(receipt.receipt.tables).toEqual([{ table: 'marketing.leads', deleted: 1, anonymised: 0 }])
    expect(await count(db.current, 'marketing.leads', `id = '${lead.id}'`)).toBe(0)

    const again = await post({ email: 'second.time@example.org' })
    expect(again.statusCode).toBe(202)
    expect(again.json()).toEqual(receipt)
    expect(await count(db.current, 'privacy.erasure_requests', `tenant_id = '${tenant.id}' and subject_kind = 'email'`)).toBe(1)
  })

  it('erases a lead by id, with the leads merged into it', async () => {
    const { survivor, merged } = await withTenant(db.current.sql, tenant.id, async (tx) => {
      const survivor = await makeLead(tx, tenant.id, { email: 'kept.once@example.org' })
      const merged = await makeLead(tx, tenant.id, { phoneE164: '+5511911112222', name: 'Merged Away' })
      await tx`update marketing.leads set merged_into = ${survivor.id} where id = ${merged.id}`
      await tx`insert into marketing.lead_merges (tenant_id, survivor_id, merged_id, reason, merged_snapshot, actor)
               values (${tenant.id}, ${survivor.id}, ${merged.id}, 'manual', ${tx.json({ name: 'Merged Away', phone: '+5511911112222' })}, 'test')`
      return { survivor, merged }
    })
    const res = await post({ leadId: merged.id })
    await drainJobs(db.current)
    const view = (await get(res.json().id)).json()
    expect(view.status).toBe('completed')
    expect(view.receipt.tables).toEqual([
      { table: 'marketing.lead_merges', deleted: 1, anonymised: 0 },
      { table: 'marketing.leads', deleted: 2, anonymised: 0 },
    ])
    expect(await count(db.current, 'marketing.leads', `id in ('${survivor.id}', '${merged.id}')`)).toBe(0)
  })

  it('fails the request, naming the table and column but never the value, when the verification pass finds the person', async () => {
    // Code that (wrongly) wrote personal data into the audit log, and a platform job payload that names them.
    await withTenant(db.current.sql, tenant.id, async (tx) => {
      await makeLead(tx, tenant.id, { email: 'left.behind@example.org' })
      await tx`insert into core.audit_log (tenant_id, actor, action, details) values (${tenant.id}, 'test', 'bad.entry', ${tx.json({ who: 'Left.Behind@Example.org' })})`
    })
    const res = await post({ email: 'left.behind@example.org' })
    await drainJobs(db.current)
    const view = (await get(res.json().id)).json()
    expect(view).toMatchObject({ status: 'failed', receipt: null, error: 'verification found the subject in core.audit_log.details' })
    expect(JSON.stringify(view)).not.toMatch(/left\.behind/i)
    const [row] = await db.current.owner<{ subjectSealed: string | null }[]>`select subject_sealed from privacy.erasure_requests where id = ${res.json().id}`
    expect(row!.subjectSealed).toBeNull()
    const audit = await db.current.owner<{ details: unknown }[]>`select details from core.audit_log where target_id = ${res.json().id} and action = 'privacy.erasure_failed'`
    expect(audit).toEqual([{ details: expect.objectContaining({ found: ['core.audit_log.details'] }) }])
  })

  it('lists only the tenant’s own requests, newest first', async () => {
    const mine = (await app.inject({ method: 'GET', url: '/v1/privacy/erasure-requests', headers: bearer(tenant.adminKey) })).json().data
    expect(mine.length).toBe(4)
    expect(mine.map((r: { createdAt: string }) => r.createdAt)).toEqual([...mine.map((r: { createdAt: string }) => r.createdAt)].sort().reverse())
    const theirs = (await app.inject({ method: 'GET', url: '/v1/privacy/erasure-requests', headers: bearer(other.adminKey) })).json().data
    expect(theirs).toEqual([])
  })

  describe('bad input changes nothing', () => {
    it.each([
      ['both leadId and email', { leadId: randomUUID(), email: 'a@example.org' }, 'email'],
      ['email and phone', { email: 'a@example.org', phone: '+5511987654321' }, 'phone'],
      ['none of them', {}, ''],
      ['an unknown property', { email: 'a@example.org', name: 'Ana' }, ''],
      ['a lead id that is not a uuid', { leadId: '42' }, 'leadId'],
      ['an email that is not one', { email: 'not-an-email' }, 'email'],
      ['a phone that is not one', { phone: '12345' }, 'phone'],
    ])('400 for %s', async (_name, payload, path) => {
      const before = await nothingChanged()
      const res = await post(payload)
      expect(res.statusCode).toBe(400)
      expect(res.json().error).toMatchObject({ code: 'BAD_REQUEST', requestId: expect.any(String) })
      if (path) expect(res.json().error.details.map((d: { path: string }) => d.path)).toContain(path)
      expect(await nothingChanged()).toEqual(before)
    })

    it("404 for another tenant's lead, and nothing of theirs is touched", async () => {
      const theirs = await withTenant(db.current.sql, other.id, (tx) => makeLead(tx, other.id, { email: 'theirs@example.org' }))
      const before = await nothingChanged()
      const res = await post({ leadId: theirs.id })
      expect(res.statusCode).toBe(404)
      expect(res.json().error.code).toBe('NOT_FOUND')
      expect(await nothingChanged()).toEqual(before)
      expect(await count(db.current, 'marketing.leads', `id = '${theirs.id}'`)).toBe(1)
    })

    it('403 for a read-only key, 401 without a key', async () => {
      const readOnly = await makeApiKey(db.current.sql, tenant, 'read_only')
      const before = await nothingChanged()
      expect((await post({ email: 'a@example.org' }, readOnly.key)).statusCode).toBe(403)
      const anonymous = await app.inject({ method: 'POST', url: '/v1/privacy/erasure-requests', payload: { email: 'a@example.org' } })
      expect(anonymous.statusCode).toBe(401)
      expect(await nothingChanged()).toEqual(before)
      // Reading receipts is fine for a read-only key.
      expect((await app.inject({ method: 'GET', url: '/v1/privacy/erasure-requests', headers: bearer(readOnly.key) })).statusCode).toBe(200)
    })

    it("404 for another tenant's request, and for an id that is not a uuid a 400", async () => {
      const mine = (await app.inject({ method: 'GET', url: '/v1/privacy/erasure-requests', headers: bearer(tenant.adminKey) })).json().data[0]
      expect((await get(mine.id, other.adminKey)).statusCode).toBe(404)
      expect((await get('nope')).statusCode).toBe(400)
    })
  })
})
