import { runOnce } from 'graphile-worker'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applyTenantRetention } from '../../../../domains/privacy/retention.js'
import { applyRetentionTask } from '../../../../services/workers/tasks/privacy__apply_retention.js'
import { crontab } from '../../../../services/workers/crontab.js'
import { workerLogger } from '../../../../services/workers/worker.js'
import { bearer, buildTestApi, testConfig, testLogger } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { makePhoneNumber } from '../../../../test/factories/whatsapp.js'

type App = Awaited<ReturnType<typeof buildTestApi>>

const DEFAULTS = { analyticsEventsDays: 90, messagesDays: null, interactionsDays: null, exportsDays: 7, linkClickDetailsDays: 30, webhookDeliveriesDays: 14, customised: false }

describe('retention: GET/PATCH /v1/privacy/retention and the nightly privacy__apply_retention run', () => {
  const db = useTestDatabase()
  let api: App
  let tenant: TestTenant
  let other: TestTenant
  let readOnlyKey: string

  const get = (key = tenant.adminKey, url = '/v1/privacy/retention') => api.inject({ method: 'GET', url, headers: bearer(key) })
  const patch = (body: unknown, key = tenant.adminKey) => api.inject({ method: 'PATCH', url: '/v1/privacy/retention', headers: bearer(key), payload: body as object })
  const settingsRows = async () => db.current.owner`select * from privacy.retention_settings order by tenant_id`
  const auditCount = async () => (await db.current.owner<{ n: number }[]>`select count(*)::int as n from core.audit_log where action = 'privacy.retention_changed'`)[0]!.n

  /** The real task, run once by graphile-worker as the cron would, with statements of `batchRows` rows. */
  const runRetentionJob = async (batchRows: number) => {
    await db.current.owner`select graphile_worker.add_job('privacy__apply_retention', '{}'::json)`
    await runOnce({
      connectionString: db.current.runtimeUrl,
      taskList: { privacy__apply_retention: applyRetentionTask({ config: testConfig({ PRIVACY_RETENTION_BATCH_ROWS: String(batchRows) }), sql: db.current.sql, log: testLogger() }) },
      logger: workerLogger(testLogger()),
    })
  }

  beforeAll(async () => {
    api = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
    readOnlyKey = (await makeApiKey(db.current.sql, tenant, 'read_only')).key
  })
  afterAll(async () => {
    await api?.close()
  })

  it('starts from the defaults: events 90 days, messages and interactions until erasure, exports 7 days, deliveries 14 (platform)', async () => {
    const res = await get(readOnlyKey)
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ ...DEFAULTS, updatedAt: null, updatedBy: null })
  })

  it('lets an admin change some periods, audited with what changed and who, never touching the rest', async () => {
    const before = await auditCount()
    const res = await patch({ messagesDays: 30, interactionsDays: 60 })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ ...DEFAULTS, messagesDays: 30, interactionsDays: 60, customised: true, updatedBy: `api_key:${tenant.adminKeyId}` })
    expect((await get()).json()).toMatchObject({ messagesDays: 30, interactionsDays: 60, analyticsEventsDays: 90 })
    const [entry] = await db.current.owner<{ actor: string; requestId: string; details: unknown }[]>`
      select actor, request_id, details from core.audit_log where action = 'privacy.retention_changed' order by id desc limit 1`
    expect(entry).toMatchObject({ actor: `api_key:${tenant.adminKeyId}`, requestId: expect.any(String) })
    expect(entry!.details).toEqual({ changes: { messagesDays: { from: null, to: 30 }, interactionsDays: { from: null, to: 60 } } })
    expect(await auditCount()).toBe(before + 1)

    // The same values again change nothing and write no audit entry.
    expect((await patch({ messagesDays: 30 })).statusCode).toBe(200)
    expect(await auditCount()).toBe(before + 1)
  })

  it('keeps the details of partner-link clicks that name no lead for the period the tenant sets', async () => {
    const res = await patch({ linkClickDetailsDays: 90 })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ linkClickDetailsDays: 90, messagesDays: 30 })
    const [row] = await db.current.owner<{ days: number }[]>`select link_click_details_days as days from privacy.retention_settings where tenant_id = ${tenant.id}`
    expect(row!.days).toBe(90)
    expect((await patch({ linkClickDetailsDays: 30 })).json()).toMatchObject({ linkClickDetailsDays: 30 })
  })

  describe('bad input changes nothing', () => {
    it.each([
      ['an empty body', {}],
      ['an unknown field', { webhookDeliveriesDays: 3 }],
      ['zero days', { analyticsEventsDays: 0 }],
      ['more than ten years', { messagesDays: 3651 }],
      ['exports kept longer than 30 days', { exportsDays: 31 }],
      ['analytics events kept forever', { analyticsEventsDays: null }],
      ['a fraction of a day', { interactionsDays: 1.5 }],
      ['days as text', { messagesDays: '30' }],
      ['click details kept forever', { linkClickDetailsDays: null }],
      ['click details kept zero days', { linkClickDetailsDays: 0 }],
    ])('refuses %s with 400', async (_name, body) => {
      const [rows, audits] = [await settingsRows(), await auditCount()]
      const res = await patch(body)
      expect(res.statusCode).toBe(400)
      expect(res.json()).toMatchObject({ error: { code: 'BAD_REQUEST', requestId: expect.any(String) } })
      expect(await settingsRows()).toEqual(rows)
      expect(await auditCount()).toBe(audits)
    })

    it('refuses a read-only key with 403', async () => {
      const rows = await settingsRows()
      expect((await patch({ messagesDays: 5 }, readOnlyKey)).statusCode).toBe(403)
      expect(await settingsRows()).toEqual(rows)
    })
  })

  it("keeps tenants apart: another tenant neither sees nor changes this tenant's settings or runs", async () => {
    expect((await get(other.adminKey)).json()).toMatchObject(DEFAULTS)
    expect((await patch({ analyticsEventsDays: 365 }, other.adminKey)).statusCode).toBe(200)
    expect((await get()).json()).toMatchObject({ analyticsEventsDays: 90, messagesDays: 30 })
    const runs = (await get(other.adminKey, '/v1/privacy/retention/runs')).json().data as { id: string }[]
    const mine = await db.current.owner<{ id: string }[]>`select id::text from privacy.retention_runs where tenant_id = ${tenant.id}`
    for (const r of mine) expect(runs.map((x) => x.id)).not.toContain(r.id)
  })

  it('has a nightly crontab line with an id', () => {
    expect(crontab.some((line) => /^\S+ \S+ \* \* \* privacy__apply_retention \?id=apply_retention/.test(line))).toBe(true)
  })

  it('deletes exactly what is past its period, in bounded batches, keeps the rest consistent, and records the run', async () => {
    // This tenant: messages 30 days, interactions 60, events 90 (default). The other: events 365, the rest kept.
    const number = await makePhoneNumber(db.current.sql, tenant)
    const otherNumber = await makePhoneNumber(db.current.sql, other)
    const o = db.current.owner
    const [lead] = await o<{ id: string }[]>`insert into marketing.leads (tenant_id, wa_id, source) values (${tenant.id}, '5511900000001', 'whatsapp') returning id`
    const [otherLead] = await o<{ id: string }[]>`insert into marketing.leads (tenant_id, wa_id, source) values (${other.id}, '5511900000002', 'whatsapp') returning id`
    const ago = (days: number) => new Date(Date.now() - days * 86_400_000)

    // Analytics events: 7 past 90 days, 2 within; the other tenant's old ones are within its 365.
    for (const [t, l, days] of [...Array.from({ length: 7 }, () => [tenant.id, lead!.id, 100]), [tenant.id, lead!.id, 10], [tenant.id, lead!.id, 89], [other.id, otherLead!.id, 100], [other.id, otherLead!.id, 200]] as [string, string, number][]) {
      await o`insert into analytics.events (tenant_id, name, lead_id, occurred_at) values (${t}, 'page_viewed', ${l}, ${ago(days)})`
    }
    // Messages: 4 old ones that go (one with an accepted send), an old one whose send is still queued (stays), 1 recent.
    const message = async (tenantId: string, numberId: string, leadId: string, wamid: string, days: number) => {
      const [m] = await o<{ id: string }[]>`
        insert into whatsapp.messages (tenant_id, phone_number_id, lead_id, direction, wamid, wa_id, type, content, status, occurred_at)
        values (${tenantId}, ${numberId}, ${leadId}, 'outbound', ${wamid}, '5511900000001', 'text', '{"body":"hi"}', 'sent', ${ago(days)}) returning id`
      await o`insert into whatsapp.message_statuses (tenant_id, wamid, status, occurred_at) values (${tenantId}, ${wamid}, 'sent', ${ago(days)})`
      return m!.id
    }
    const old = [] as string[]
    for (let i = 0; i < 4; i++) old.push(await message(tenant.id, number.id, lead!.id, `wamid.old-${i}`, 40))
    const openSend = await message(tenant.id, number.id, lead!.id, 'wamid.open', 40)
    const recent = await message(tenant.id, number.id, lead!.id, 'wamid.recent', 5)
    const otherOld = await message(other.id, otherNumber.id, otherLead!.id, 'wamid.other-old', 400)
    for (const [id, state] of [[old[0]!, 'accepted'], [openSend, 'queued']] as const) {
      await o`
        insert into whatsapp.outbound_sends (message_id, tenant_id, phone_number_id, wa_id, kind, body, source, requested_by, idempotency_key, state)
        values (${id}, ${tenant.id}, ${number.id}, '5511900000001', 'text', '{}', 'api', 'test', ${`k-${id}`}, ${state})`
    }
    // Interactions: 5 past 60 days (one points at an old message), 1 recent pointing at an old message (kept, unlinked).
    for (let i = 0; i < 5; i++) {
      await o`insert into marketing.lead_interactions (tenant_id, lead_id, type, channel, occurred_at, message_id) values (${tenant.id}, ${lead!.id}, 'note', 'api', ${ago(70)}, ${i === 0 ? old[1]! : null})`
    }
    const [keptInteraction] = await o<{ id: string }[]>`
      insert into marketing.lead_interactions (tenant_id, lead_id, type, channel, occurred_at, message_id)
      values (${tenant.id}, ${lead!.id}, 'whatsapp_message', 'whatsapp', ${ago(1)}, ${old[2]!}) returning id`
    await o`insert into marketing.lead_interactions (tenant_id, lead_id, type, channel, occurred_at) values (${other.id}, ${otherLead!.id}, 'note', 'api', ${ago(400)})`
    // A conversation event that points at an old message stays, without its pointer (the foreign key sets it null).
    const [conversation] = await o<{ id: string }[]>`
      insert into conversations.conversations (tenant_id, lead_id, phone_number_id, wa_id) values (${tenant.id}, ${lead!.id}, ${number.id}, '5511900000001') returning id`
    const [event] = await o<{ id: string }[]>`
      insert into conversations.events (tenant_id, conversation_id, kind, dedupe_key, message_id, occurred_at, status)
      values (${tenant.id}, ${conversation!.id}, 'message', 'e1', ${old[3]!}, ${ago(40)}, 'applied') returning id`

    await runRetentionJob(3)

    const left = async (tenantId: string) => (await o<Record<string, number>[]>`
      select (select count(*)::int from analytics.events where tenant_id = ${tenantId}) as events,
             (select count(*)::int from whatsapp.messages where tenant_id = ${tenantId}) as messages,
             (select count(*)::int from whatsapp.message_statuses where tenant_id = ${tenantId}) as statuses,
             (select count(*)::int from whatsapp.outbound_sends where tenant_id = ${tenantId}) as sends,
             (select count(*)::int from marketing.lead_interactions where tenant_id = ${tenantId}) as interactions`)[0]
    expect(await left(tenant.id)).toEqual({ events: 2, messages: 2, statuses: 2, sends: 1, interactions: 1 })
    expect(await left(other.id)).toEqual({ events: 2, messages: 1, statuses: 1, sends: 0, interactions: 1 })
    const kept = await o<{ id: string }[]>`select id from whatsapp.messages where tenant_id = ${tenant.id} order by id`
    expect(kept.map((m) => m.id).sort()).toEqual([openSend, recent].sort())
    expect(await o`select 1 from whatsapp.messages where id = ${otherOld}`).toHaveLength(1)
    // Nothing points at a deleted message any more.
    expect((await o<{ messageId: string | null }[]>`select message_id from marketing.lead_interactions where id = ${keptInteraction!.id}`)[0]!.messageId).toBeNull()
    expect((await o<{ messageId: string | null }[]>`select message_id from conversations.events where id = ${event!.id}`)[0]!.messageId).toBeNull()

    // The run, as the tenant sees it: the periods applied, the rows removed per table, in statements of 3 rows:
    // exports 1 (empty), events 7 → 3 + 3 + 1, dedupe keys of dropped days 1 (empty: no partition is older than the
    // other tenant's 365 days), messages 4 → 3 + 1, interactions 5 → 3 + 2.
    const runs = (await get(readOnlyKey, '/v1/privacy/retention/runs')).json().data
    expect(runs).toHaveLength(1)
    expect(runs[0]).toMatchObject({
      status: 'completed',
      settings: { analyticsEventsDays: 90, messagesDays: 30, interactionsDays: 60, exportsDays: 7 },
      removed: {
        'analytics.events': 7, 'whatsapp.messages': 4, 'whatsapp.message_statuses': 4, 'whatsapp.outbound_sends': 1,
        'marketing.lead_interactions.unlinked': 2, 'marketing.lead_interactions': 5,
      },
      // Exports, events, event keys, the five rollup tables (5-minute, hour, daily uniques, KPIs, assessment days:
      // one empty batch each), messages, interactions.
      batches: 1 + 3 + 1 + 5 + 2 + 2,
      finishedAt: expect.any(String),
    })
    const otherRuns = (await get(other.adminKey, '/v1/privacy/retention/runs')).json().data
    expect(otherRuns).toHaveLength(1)
    expect(otherRuns[0].removed).toEqual({})

    // Run again: nothing more is past its period, so nothing more goes.
    await runRetentionJob(3)
    expect(await left(tenant.id)).toEqual({ events: 2, messages: 2, statuses: 2, sends: 1, interactions: 1 })
  })

  it('stops at its time budget and records the run as incomplete, deleting nothing it did not record', async () => {
    await db.current.owner`insert into analytics.events (tenant_id, name, occurred_at) values (${tenant.id}, 'old', now() - interval '200 days')`
    const result = await applyTenantRetention(db.current.sql, tenant.id, { batchRows: 10, deadline: Date.now() - 1, defaultExportsDays: 7 })
    expect(result).toMatchObject({ status: 'incomplete', batches: 0, removed: {} })
    const [run] = await db.current.owner<{ status: string; batches: number }[]>`select status, batches from privacy.retention_runs where id = ${result.runId}`
    expect(run).toEqual({ status: 'incomplete', batches: 0 })
    expect(await db.current.owner`select 1 from analytics.events where tenant_id = ${tenant.id} and name = 'old'`).toHaveLength(1)
  })
})
