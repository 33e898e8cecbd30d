import { runOnce } from 'graphile-worker'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EXPORT_SCHEMA_VERSION } from '../../../../domains/privacy/export-schemas.js'
import { CHUNK_BYTES, exportTables, produceExport, subjectHash } from '../../../../domains/privacy/export.js'
import { applyRetentionForAllTenants } from '../../../../domains/privacy/retention.js'
import { exportSubjectTask } from '../../../../services/workers/tasks/privacy__export_subject.js'
import { workerLogger } from '../../../../services/workers/worker.js'
import { bearer, buildTestApi, testConfig, testLogger } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeForm } from '../../../../test/factories/marketing-rows.js'
import { makePersonWithHistory, type PersonWithHistory } from '../../../../test/factories/privacy-export-rows.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { makePhoneNumber } from '../../../../test/factories/whatsapp.js'

type App = Awaited<ReturnType<typeof buildTestApi>>
type ExportDocument = {
  schemaVersion: number
  exportId: string
  status: string
  subject: { kind: string; hash: string; leadIds: string[] }
  tables: Record<string, { personal: string[]; rows: Record<string, unknown>[] }>
  excluded: Record<string, string>
  rowCounts: Record<string, number>
}

describe('subject-access export: POST /v1/privacy/export-requests, the privacy__export_subject job, GET the document', () => {
  const db = useTestDatabase()
  let api: App
  let tenant: TestTenant
  let other: TestTenant
  let readOnlyKey: string
  let subject: PersonWithHistory
  let neighbour: PersonWithHistory
  let stranger: PersonWithHistory

  /** Runs only the export job, as the worker would (other queued jobs, such as sends, stay queued). */
  const runExportJobs = () => runOnce({
    connectionString: db.current.runtimeUrl,
    taskList: { privacy__export_subject: exportSubjectTask({ config: testConfig(), sql: db.current.sql, log: testLogger() }) },
    logger: workerLogger(testLogger()),
  })
  const post = (body: unknown, key = tenant.adminKey) => api.inject({ method: 'POST', url: '/v1/privacy/export-requests', headers: bearer(key), payload: body as object })
  const get = (id: string, key = tenant.adminKey) => api.inject({ method: 'GET', url: `/v1/privacy/export-requests/${id}`, headers: bearer(key) })
  const counts = async () => {
    const [r] = await db.current.owner<{ requests: number; jobs: number; audits: number }[]>`
      select (select count(*)::int from privacy.export_requests) as requests,
             (select count(*)::int from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id
               where t.identifier = 'privacy__export_subject') as jobs,
             (select count(*)::int from core.audit_log where action = 'privacy.export_requested') as audits`
    return r!
  }

  beforeAll(async () => {
    api = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
    readOnlyKey = (await makeApiKey(db.current.sql, tenant, 'read_only')).key
    const number = await makePhoneNumber(db.current.sql, tenant)
    const form = await makeForm(db.current.sql, tenant, { consent: { required: true, text: 'Contact me on WhatsApp', policyVersion: 'v1' } })
    // Enough analytics events (~1 KB each) that the document spans several stored pieces.
    subject = await makePersonWithHistory(db.current.sql, tenant, { number, formId: form.id, marker: 'subjectana', waId: '5511987650001', events: 600 })
    neighbour = await makePersonWithHistory(db.current.sql, tenant, { number, formId: form.id, marker: 'neighbourbruno', waId: '5511987650002' })
    const otherNumber = await makePhoneNumber(db.current.sql, other)
    const otherForm = await makeForm(db.current.sql, other)
    stranger = await makePersonWithHistory(db.current.sql, other, { number: otherNumber, formId: otherForm.id, marker: 'strangercarla', waId: '5511987650003' })
  })
  afterAll(async () => {
    await api?.close()
  })

  it('exports everything held about the person, grouped by catalogued table, and nothing of anyone else', async () => {
    const created = await post({ email: subject.email.toUpperCase() })
    expect(created.statusCode).toBe(202)
    const { id, status } = created.json()
    expect(status).toBe('pending')

    // Until the job has run, GET answers the status.
    const pending = await get(id)
    expect(pending.statusCode).toBe(200)
    expect(pending.json()).toMatchObject({ id, status: 'pending', subjectKind: 'email', readyAt: null })

    // The job's payload names ids only.
    const [job] = await db.current.owner<{ payload: unknown }[]>`
      select j.payload from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id
       where t.identifier = 'privacy__export_subject'`
    expect(job!.payload).toEqual({ tenantId: tenant.id, exportId: id })

    await runExportJobs()
    const res = await get(id)
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    expect(res.headers['cache-control']).toBe('no-store')
    const text = res.body
    const doc = JSON.parse(text) as ExportDocument
    expect(doc).toMatchObject({ schemaVersion: EXPORT_SCHEMA_VERSION, exportId: id, status: 'ready', subject: { kind: 'email', hash: subjectHash('email', subject.email) } })
    expect(doc.subject.leadIds.sort()).toEqual([subject.leadId, subject.mergedLeadId].sort())

    // Every catalogued tenant table has its group, with its personal columns named.
    expect(Object.keys(doc.tables)).toEqual(exportTables())
    expect(doc.tables['marketing.leads']!.personal).toContain('email')
    const rows = (table: string) => doc.tables[table]!.rows
    const ids = (table: string, col = 'id') => rows(table).map((r) => r[col]).sort()

    expect(ids('marketing.leads')).toEqual([subject.leadId, subject.mergedLeadId].sort())
    expect(rows('marketing.form_submissions')).toHaveLength(1)
    expect(rows('marketing.form_submissions')[0]).toMatchObject({ lead_id: subject.leadId, answers: { email: subject.email }, ip: '203.0.113.7' })
    // The consent carries its text, and the form's consent settings the text came from.
    expect(rows('marketing.consents')).toHaveLength(1)
    expect(rows('marketing.consents')[0]).toMatchObject({
      granted: true, purpose: 'Contact me on WhatsApp', policy_version: 'v1', form: { consent: { text: 'Contact me on WhatsApp', policyVersion: 'v1' } },
    })
    expect(rows('marketing.lead_interactions')).toHaveLength(2)
    expect(rows('marketing.lead_merges')).toMatchObject([{ survivor_id: subject.leadId, merged_id: subject.mergedLeadId }])
    expect(ids('whatsapp.messages')).toEqual([...subject.messageIds].sort())
    expect(rows('whatsapp.messages').map((m) => m.content)).toEqual(expect.arrayContaining([{ body: 'hello from subjectana' }, { body: 'reply to subjectana' }]))
    // The outbound message's status history, and its send.
    expect(rows('whatsapp.message_statuses').map((s) => [s.wamid, s.status]).sort()).toEqual([[subject.outboundWamid, 'delivered'], [subject.outboundWamid, 'sent']])
    expect(rows('whatsapp.outbound_sends')).toHaveLength(1)
    expect(rows('whatsapp.service_windows')).toHaveLength(1)
    expect(ids('conversations.conversations')).toEqual([subject.conversationId])
    expect(rows('conversations.events').map((e) => e.kind).sort()).toEqual(['message', 'timer'])
    expect(rows('analytics.events')).toHaveLength(600)
    // The submission still waiting in the form inbox names the person by email: found by content.
    expect(rows('marketing.form_submission_inbox')).toHaveLength(1)
    expect(doc.rowCounts['analytics.events']).toBe(600)
    expect(Object.keys(doc.excluded)).toEqual(expect.arrayContaining(['whatsapp.webhook_deliveries', 'privacy.export_chunks']))

    // Nothing of the neighbour in the same tenant, nor of the other tenant's person.
    for (const p of [neighbour, stranger]) {
      for (const value of [p.marker, p.leadId, p.waId, p.email, p.conversationId, ...p.messageIds]) expect(text).not.toContain(value)
    }

    // It was stored in several pieces, none much bigger than CHUNK_BYTES, and the status view knows the size.
    const pieces = await db.current.owner<{ seq: number; size: number }[]>`select seq, length(body) as size from privacy.export_chunks where export_id = ${id} order by seq`
    expect(pieces.length).toBeGreaterThan(2)
    expect(Math.max(...pieces.map((p) => p.size))).toBeLessThan(CHUNK_BYTES + 4096)
    const [stored] = await db.current.owner<{ bytes: string; status: string; expiresAt: Date }[]>`select bytes, status, expires_at from privacy.export_requests where id = ${id}`
    expect(Number(stored!.bytes)).toBe(Buffer.byteLength(text))
    // The default expiry: PRIVACY_EXPORT_TTL_DAYS (7).
    expect(stored!.expiresAt.getTime() - Date.now()).toBeGreaterThan(6.9 * 86_400_000)
  })

  it('finds the person by leadId and by phone, in any spelling, with the same data', async () => {
    for (const body of [{ leadId: subject.leadId }, { phone: '+55 11 98765-0001' }, { phone: '(11) 98765-0001' }]) {
      const { id } = (await post(body)).json()
      await runExportJobs()
      const doc = JSON.parse((await get(id)).body) as ExportDocument
      expect(doc.subject.leadIds.sort()).toEqual([subject.leadId, subject.mergedLeadId].sort())
      expect(doc.rowCounts['whatsapp.messages']).toBe(2)
    }
  })

  it('runs its job idempotently: a retried job leaves a ready export exactly as it was', async () => {
    const { id } = (await post({ leadId: subject.leadId })).json()
    await runExportJobs()
    const before = await db.current.owner`select seq, md5(body) from privacy.export_chunks where export_id = ${id} order by seq`
    expect(await produceExport(db.current.sql, tenant.id, id, 7)).toBe('already_ready')
    expect(await db.current.owner`select seq, md5(body) from privacy.export_chunks where export_id = ${id} order by seq`).toEqual(before)
    // A job whose request is gone (erased with its lead) has nothing to do.
    expect(await produceExport(db.current.sql, tenant.id, '00000000-0000-4000-8000-000000000000', 7)).toBe('missing')
  })

  it('completes with an empty document for an email nobody has', async () => {
    const { id } = (await post({ email: 'nobody@example.com' })).json()
    await runExportJobs()
    const doc = JSON.parse((await get(id)).body) as ExportDocument
    expect(doc.subject.leadIds).toEqual([])
    expect(Object.values(doc.rowCounts).every((n) => n === 0)).toBe(true)
    expect(Object.keys(doc.tables)).toEqual(exportTables())
  })

  it('audits each request and download with the acting key, request id and subject hash, never the subject', async () => {
    const before = await counts()
    const res = await post({ email: subject.email })
    const { id } = res.json()
    await runExportJobs()
    await get(id)
    const entries = await db.current.owner<{ actor: string; action: string; targetId: string; requestId: string; details: Record<string, unknown> }[]>`
      select actor, action, target_id, request_id, details from core.audit_log where target_id = ${id} order by id`
    expect(entries.map((e) => e.action)).toEqual(['privacy.export_requested', 'privacy.export_downloaded'])
    expect(entries[0]).toMatchObject({ actor: `api_key:${tenant.adminKeyId}`, requestId: res.headers['x-request-id'] ?? expect.any(String) })
    expect(entries[0]!.details).toEqual({ subjectKind: 'email', subjectHash: subjectHash('email', subject.email), found: true })
    expect(JSON.stringify(entries)).not.toContain(subject.email)
    expect((await counts()).audits).toBe(before.audits + 1)
    // The request row holds the hash, not the subject.
    const [row] = await db.current.owner<{ text: string }[]>`select to_jsonb(r)::text as text from privacy.export_requests r where id = ${id}`
    expect(row!.text).not.toContain(subject.email)
  })

  describe('bad input changes nothing', () => {
    it.each([
      ['both leadId and email', 400, { leadId: '00000000-0000-4000-8000-000000000000', email: 'a@example.com' }],
      ['email and phone', 400, { email: 'a@example.com', phone: '+5511987650001' }],
      ['nothing', 400, {}],
      ['an unknown key', 400, { name: 'Ana' }],
      ['a leadId that is not a uuid', 400, { leadId: 'abc' }],
      ['an email that is not one', 400, { email: 'not-an-email' }],
      ['a phone that is not one', 400, { phone: '12' }],
      ['a phone that is no number', 400, { phone: 'call me maybe' }],
      ["another tenant's lead", 404, null],
      ['a lead that does not exist', 404, { leadId: '00000000-0000-4000-8000-000000000000' }],
    ])('answers %s with %i', async (_name, status, body) => {
      const before = await counts()
      const res = await post(body ?? { leadId: stranger.leadId })
      expect(res.statusCode).toBe(status)
      expect(res.json()).toMatchObject({ error: { code: status === 400 ? 'BAD_REQUEST' : 'NOT_FOUND', requestId: expect.any(String) } })
      expect(await counts()).toEqual(before)
    })

    it('refuses a read-only key on both routes (403), recording nothing', async () => {
      const before = await counts()
      expect((await post({ email: subject.email }, readOnlyKey)).statusCode).toBe(403)
      const { id } = (await post({ email: subject.email })).json()
      expect((await get(id, readOnlyKey)).statusCode).toBe(403)
      expect((await counts()).requests).toBe(before.requests + 1)
    })

    it('answers 404 for an unknown export id and 400 for a malformed one', async () => {
      expect((await get('00000000-0000-4000-8000-000000000000')).statusCode).toBe(404)
      expect((await get('nope')).statusCode).toBe(400)
    })
  })

  it("keeps another tenant out: it cannot read this tenant's export, nor export this tenant's lead", async () => {
    const { id } = (await post({ leadId: subject.leadId })).json()
    await runExportJobs()
    const res = await get(id, other.adminKey)
    expect(res.statusCode).toBe(404)
    expect(res.body).not.toContain(subject.marker)
    expect((await post({ leadId: subject.leadId }, other.adminKey)).statusCode).toBe(404)
    // By email, the other tenant finds nobody: its export is empty.
    const theirs = (await post({ email: subject.email }, other.adminKey)).json()
    await runExportJobs()
    const doc = JSON.parse((await get(theirs.id, other.adminKey)).body) as ExportDocument
    expect(doc.subject.leadIds).toEqual([])
    expect(JSON.stringify(doc)).not.toContain(subject.marker)
  })

  it('expires a ready export: past its expiry GET says expired, and retention then deletes it with its pieces', async () => {
    const { id } = (await post({ leadId: subject.leadId })).json()
    await runExportJobs()
    expect(JSON.parse((await get(id)).body).status).toBe('ready')
    await db.current.owner`update privacy.export_requests set ready_at = now() - interval '8 days', expires_at = now() - interval '1 day' where id = ${id}`

    const expired = await get(id)
    expect(expired.statusCode).toBe(200)
    expect(expired.json()).toMatchObject({ id, status: 'expired' })
    expect(expired.body).not.toContain(subject.marker)

    const kept = await db.current.owner<{ n: number }[]>`select count(*)::int as n from privacy.export_requests where id <> ${id} and status = 'ready'`
    const results = await applyRetentionForAllTenants(db.current.sql, testConfig())
    const mine = results.find((r) => r.tenantId === tenant.id)!
    expect(mine.removed['privacy.export_requests']).toBe(1)
    expect(mine.removed['privacy.export_chunks']).toBeGreaterThan(0)
    expect((await get(id)).statusCode).toBe(404)
    const [left] = await db.current.owner<{ chunks: number; ready: number }[]>`
      select (select count(*)::int from privacy.export_chunks where export_id = ${id}) as chunks,
             (select count(*)::int from privacy.export_requests where status = 'ready') as ready`
    expect(left).toEqual({ chunks: 0, ready: kept[0]!.n })
  })

  it('goes with its lead when the lead is deleted (as erasure does): the document is a copy of the person too', async () => {
    const { id } = (await post({ leadId: neighbour.leadId })).json()
    await runExportJobs()
    expect((await get(id)).statusCode).toBe(200)
    await db.current.owner`delete from marketing.leads where id = ${neighbour.leadId}`
    expect((await get(id)).statusCode).toBe(404)
    const [left] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from privacy.export_chunks where export_id = ${id}`
    expect(left!.n).toBe(0)
  })
})
