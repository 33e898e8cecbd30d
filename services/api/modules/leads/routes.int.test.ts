import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeLead } from '../../../../test/factories/marketing-rows.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { makePhoneNumber } from '../../../../test/factories/whatsapp.js'
import { withTenant } from '../../../../lib/db.js'
import type { App } from '../../../../lib/http/create-server.js'

describe('leads API', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let ana: string
  let bruno: string
  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql, { defaultCountry: 'BR' })
    const number = await makePhoneNumber(db.current.sql, tenant)
    await withTenant(db.current.sql, tenant.id, async (tx) => {
      ana = (await makeLead(tx, tenant.id, { name: 'Ana Souza', email: 'ana@example.com', phoneE164: '+5521987654321', source: 'web_form', createdAt: new Date('2025-03-01T10:00:00Z') })).id
      bruno = (await makeLead(tx, tenant.id, { name: null, phoneE164: '+5511912345678', waId: '5511912345678', source: 'whatsapp', status: 'contacted', createdAt: new Date('2025-03-02T10:00:00Z') })).id
      await tx`update marketing.leads set profile_name = 'Bruno WA' where id = ${bruno}`
      await makeLead(tx, tenant.id, { name: 'Carla', email: 'carla@example.com', source: 'web_form', tags: ['vip'], createdAt: new Date('2025-03-03T10:00:00Z') })
      const [message] = await tx<{ id: string }[]>`
        insert into whatsapp.messages (tenant_id, phone_number_id, lead_id, direction, wamid, wa_id, type, content, status, occurred_at)
        values (${tenant.id}, ${number.id}, ${bruno}, 'inbound', 'wamid.leads-api-1', '5511912345678', 'text', '{"body":"Oi"}', 'received', '2025-03-02T10:00:00Z')
        returning id`
      await tx`
        insert into marketing.lead_interactions (tenant_id, lead_id, type, channel, occurred_at, message_id, dedupe_key)
        values (${tenant.id}, ${bruno}, 'whatsapp_message', 'whatsapp', '2025-03-02T10:00:00Z', ${message!.id}, 'wa:msg:wamid.leads-api-1')`
      await tx`
        insert into whatsapp.message_statuses (tenant_id, wamid, status, occurred_at)
        values (${tenant.id}, 'wamid.leads-api-1', 'read', '2025-03-02T10:01:00Z')`
    })
  })
  afterAll(() => app.close())
  const get = (url: string, key = tenant.adminKey) => app.inject({ method: 'GET', url, headers: bearer(key) })
  const ids = (res: { json: () => { data: { id: string }[] } }) => res.json().data.map((l) => l.id)

  describe('listing and search', () => {
    it.each<[string, string, () => string[]]>([
      ['everyone, newest first', '', () => [expect.any(String), bruno, ana] as unknown as string[]],
      ['by status', '?status=contacted', () => [bruno]],
      ['by source', '?source=web_form', () => [expect.any(String), ana] as unknown as string[]],
      ['by creation date', '?createdFrom=2025-03-01&createdTo=2025-03-02', () => [ana]],
      ['by email, however it is typed', `?q=${encodeURIComponent(' ANA@example.com ')}`, () => [ana]],
      ['by phone, in the national spelling', `?q=${encodeURIComponent('(21) 98765-4321')}`, () => [ana]],
      ['by phone, as an old 8-digit mobile', `?q=${encodeURIComponent('+55 21 8765-4321')}`, () => [ana]],
      ['by the start of a name', '?q=an', () => [ana]],
      ['by the start of a WhatsApp profile name', '?q=bruno', () => [bruno]],
      ['a LIKE wildcard literally', '?q=%25', () => []],
    ])('finds %s', async (_story, query, expected) => {
      const res = await get(`/v1/leads${query}`)
      expect(res.statusCode).toBe(200)
      expect(ids(res)).toEqual(expected())
    })

    it('pages with an opaque cursor', async () => {
      const first = await get('/v1/leads?limit=2')
      expect(first.json().data).toHaveLength(2)
      const second = await get(`/v1/leads?limit=2&cursor=${first.json().nextCursor}`)
      expect(ids(second)).toEqual([ana])
      expect(second.json().nextCursor).toBeNull()
      expect((await get('/v1/leads?cursor=garbage')).statusCode).toBe(400)
    })
  })

  it("shows one lead with its timeline, and a lead's messages with their status history", async () => {
    const detail = await get(`/v1/leads/${bruno}`)
    expect(detail.statusCode).toBe(200)
    expect(detail.json()).toMatchObject({
      lead: { id: bruno, waId: '5511912345678', profileName: 'Bruno WA', status: 'contacted' },
      consents: [],
      merges: [],
      timeline: { data: [{ type: 'whatsapp_message', channel: 'whatsapp', message: { direction: 'inbound', content: { body: 'Oi' } } }], nextCursor: null },
    })
    const messages = await get(`/v1/leads/${bruno}/messages`)
    expect(messages.statusCode).toBe(200)
    expect(messages.json().data).toMatchObject([{ wamid: 'wamid.leads-api-1', statusHistory: [{ status: 'read' }] }])
  })

  it('changes status, owner and tags, recording each change with who made it', async () => {
    const res = await app.inject({
      method: 'PATCH', url: `/v1/leads/${ana}`, headers: bearer(tenant.adminKey),
      payload: { status: 'qualified', owner: 'maria@clinic.example', tags: ['implants', 'vip', 'implants'] },
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ status: 'qualified', owner: 'maria@clinic.example', tags: ['implants', 'vip'] })
    const note = await app.inject({ method: 'POST', url: `/v1/leads/${ana}/notes`, headers: bearer(tenant.adminKey), payload: { text: 'Prefers mornings' } })
    expect(note.statusCode).toBe(201)

    const timeline = (await get(`/v1/leads/${ana}/timeline`)).json().data
    expect(timeline.map((e: { type: string }) => e.type)).toEqual(['note', 'lead_updated'])
    expect(timeline[1]).toMatchObject({
      actor: `api_key:${tenant.adminKeyId}`, channel: 'api',
      details: { changes: { status: { from: 'new', to: 'qualified' }, owner: { from: null, to: 'maria@clinic.example' }, tags: { from: [], to: ['implants', 'vip'] } } },
    })
    // The same values again change nothing and record nothing.
    await app.inject({ method: 'PATCH', url: `/v1/leads/${ana}`, headers: bearer(tenant.adminKey), payload: { status: 'qualified' } })
    expect((await get(`/v1/leads/${ana}/timeline`)).json().data).toHaveLength(2)
  })

  it('sets status and tags in bulk, with an interaction per changed lead', async () => {
    const missing = '6f1c1a60-4c7d-4c43-9a57-4f7f6a1e0c11'
    const res = await app.inject({
      method: 'POST', url: '/v1/leads/bulk', headers: bearer(tenant.adminKey),
      payload: { leadIds: [ana, bruno, missing], status: 'lost', addTags: ['spring'], removeTags: ['vip'] },
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ updated: 2, unchanged: 0, notFound: [missing] })
    const [row] = await db.current.owner`select status, tags from marketing.leads where id = ${ana}`
    expect(row).toEqual({ status: 'lost', tags: ['implants', 'spring'] })
    const again = await app.inject({ method: 'POST', url: '/v1/leads/bulk', headers: bearer(tenant.adminKey), payload: { leadIds: [ana], status: 'lost' } })
    expect(again.json()).toEqual({ updated: 0, unchanged: 1, notFound: [] })
  })

  it('merges two leads by hand and lists the merge', async () => {
    const [dup] = await withTenant(db.current.sql, tenant.id, async (tx) => [await makeLead(tx, tenant.id, { email: 'bruno@example.com', name: 'Bruno' })])
    const res = await app.inject({ method: 'POST', url: `/v1/leads/${bruno}/merge`, headers: bearer(tenant.adminKey), payload: { leadId: dup!.id } })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ id: bruno, email: 'bruno@example.com', name: 'Bruno' })
    const merges = (await get('/v1/leads/merges')).json().data
    expect(merges[0]).toMatchObject({ survivorId: bruno, mergedId: dup!.id, reason: 'manual' })
    expect((await get(`/v1/leads/${dup!.id}`)).json().lead.mergedInto).toBe(bruno)
    const patchMerged = await app.inject({ method: 'PATCH', url: `/v1/leads/${dup!.id}`, headers: bearer(tenant.adminKey), payload: { status: 'new' } })
    expect(patchMerged.statusCode).toBe(409)
  })

  describe('errors', () => {
    it.each<[string, unknown, string]>([
      ['an unknown status', { status: 'won' }, 'status'],
      ['a tag with a comma', { tags: ['a,b'] }, 'tags.0'],
      ['an empty owner', { owner: '  ' }, 'owner'],
      ['an unknown property', { score: 5 }, ''],
      ['nothing to change', {}, ''],
    ])('refuses %s with 400 naming it', async (_story, payload, path) => {
      const res = await app.inject({ method: 'PATCH', url: `/v1/leads/${ana}`, headers: bearer(tenant.adminKey), payload: payload as object })
      expect(res.statusCode).toBe(400)
      expect(res.json().error.details.map((d: { path: string }) => d.path)).toContain(path)
    })

    it('answers 404 for a lead that does not exist, 400 for a bad id and 403 to a read-only key that writes', async () => {
      expect((await get('/v1/leads/6f1c1a60-4c7d-4c43-9a57-4f7f6a1e0c11')).statusCode).toBe(404)
      expect((await get('/v1/leads/nope')).statusCode).toBe(400)
      const reader = await makeApiKey(db.current.sql, tenant, 'read_only')
      expect((await get('/v1/leads', reader.key)).statusCode).toBe(200)
      const write = await app.inject({ method: 'PATCH', url: `/v1/leads/${ana}`, headers: bearer(reader.key), payload: { status: 'new' } })
      expect(write.statusCode).toBe(403)
    })
  })

  describe('security: another tenant', () => {
    it("can neither read, change, annotate, bulk-update, merge nor export this tenant's leads", async () => {
      const other = await makeTenant(db.current.sql)
      const as = bearer(other.adminKey)
      expect((await app.inject({ method: 'GET', url: '/v1/leads', headers: as })).json().data).toEqual([])
      for (const url of [`/v1/leads/${ana}`, `/v1/leads/${ana}/timeline`, `/v1/leads/${bruno}/messages`]) {
        expect((await app.inject({ method: 'GET', url, headers: as })).statusCode, url).toBe(404)
      }
      expect((await app.inject({ method: 'PATCH', url: `/v1/leads/${ana}`, headers: as, payload: { status: 'converted' } })).statusCode).toBe(404)
      expect((await app.inject({ method: 'POST', url: `/v1/leads/${ana}/notes`, headers: as, payload: { text: 'x' } })).statusCode).toBe(404)
      expect((await app.inject({ method: 'POST', url: '/v1/leads/bulk', headers: as, payload: { leadIds: [ana], status: 'converted' } })).json().notFound).toEqual([ana])
      const ownLead = await withTenant(db.current.sql, other.id, (tx) => makeLead(tx, other.id, { email: 'x@other.example' }))
      expect((await app.inject({ method: 'POST', url: `/v1/leads/${ownLead.id}/merge`, headers: as, payload: { leadId: ana } })).statusCode).toBe(404)
      const csv = await app.inject({ method: 'GET', url: '/v1/leads/export.csv', headers: as })
      expect(csv.body).not.toContain('ana@example.com')
      const [row] = await db.current.owner`select status, merged_into from marketing.leads where id = ${ana}`
      expect(row).toEqual({ status: 'lost', mergedInto: null })
    })
  })
})

describe('leads CSV export', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    await db.current.owner`
      insert into marketing.leads (tenant_id, email, name, phone_e164, phone_key, source, status, created_at)
      select ${tenant.id}, 'lead' || g || '@bulk.example', case when g = 1 then '=cmd|'' /C calc''!A0' else 'Lead, number ' || g end,
             '+55119' || lpad(g::text, 8, '0'), '+55119' || lpad(g::text, 8, '0'), 'import', case when g % 10 = 0 then 'converted' else 'new' end,
             timestamptz '2025-01-01' + g * interval '1 second'
        from generate_series(1, 10000) g`
  })
  afterAll(() => app.close())

  it('streams all 10,000 leads as CSV, quoted and defused, without a page limit', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/leads/export.csv', headers: bearer(tenant.adminKey) })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8')
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="leads-\d{4}-\d{2}-\d{2}\.csv"$/)
    // Streamed: no length known up front.
    expect(res.headers['content-length']).toBeUndefined()
    const lines = res.body.trimEnd().split('\r\n')
    expect(lines[0]).toMatch(/^id,name,profile_name,email,phone_e164,/)
    expect(lines).toHaveLength(10_001)
    expect(lines[1]).toContain('"Lead, number 10000",,lead10000@bulk.example,+5511900010000')
    expect(lines.at(-1)).toContain(`'=cmd|' /C calc'!A0`)
  })

  it('exports only the leads matching a filter', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/leads/export.csv?status=converted', headers: bearer(tenant.adminKey) })
    expect(res.body.trimEnd().split('\r\n')).toHaveLength(1_001)
  })
})
