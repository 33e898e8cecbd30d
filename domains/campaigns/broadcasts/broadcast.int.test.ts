import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { withTenant } from '../../../lib/db.js'
import type { App } from '../../../lib/http/create-server.js'
import type { WhatsAppEmulator } from '../../../ops/emulators/whatsapp-cloud-api.js'
import { bearer } from '../../../test/apps.js'
import { useTestDatabase } from '../../../test/db.js'
import { type SendingRig, startSendingRig } from '../../../test/sending-rig.js'
import { makeTemplate } from '../../../test/factories/conversations-rows.js'
import { makeTenant, type TestTenant } from '../../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../../test/factories/whatsapp.js'
import { postDelivery, waitForOpenSends } from '../../../test/whatsapp.js'
import * as f from '../../whatsapp/webhook/fixtures.js'
import { suppressionRows } from '../../privacy/suppression.js'

/**
 * Broadcasts end to end: the API creates and starts them, a real graphile-worker runner dispatches and sends them
 * through the outbox to the Cloud API emulator over HTTP, whose status webhooks come back through the webhooks
 * service; template webhooks (PAUSED, APPROVED) arrive the same way.
 */
describe('broadcasts through the real worker and the Cloud API emulator', { timeout: 240_000 }, () => {
  const db = useTestDatabase()
  const RATE = 40
  let api: App
  let webhooks: App
  let wa: WhatsAppEmulator
  let rig: SendingRig
  let tenant: TestTenant
  let number: TestNumber

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql, { defaultCountry: 'BR', timezone: 'America/Sao_Paulo' })
    number = await makePhoneNumber(db.current.sql, tenant)
    // The tests of this file share the number: well over a thousand template recipients in all.
    await db.current.owner`update whatsapp.phone_numbers set messaging_limit = 'TIER_10K' where id = ${number.id}`
    rig = await startSendingRig(db.current, number, RATE)
    api = rig.api
    webhooks = rig.webhooks
    wa = rig.wa
  })
  afterAll(() => rig?.close())
  beforeEach(() => {
    wa.reset()
    wa.setRateLimit(RATE)
  })
  // A stopped or paused broadcast's claimed sends still go: let them finish before the next test.
  afterEach(() => waitForOpenSends(db.current))

  let seq = 0
  /** Leads for one test, tagged so each test's audience is its own. */
  async function makeLeads(tag: string, n: number, overrides: (i: number) => { name?: string | null; fields?: object; optedOut?: boolean } = () => ({})) {
    return withTenant(db.current.sql, tenant.id, async (tx) => {
      const out: { id: string; waId: string }[] = []
      for (let i = 0; i < n; i++) {
        const o = overrides(i)
        const waId = `55119${String(10_000_000 + ++seq * 97 + i).slice(-8)}`
        const [lead] = await tx<{ id: string }[]>`
          insert into marketing.leads (tenant_id, phone_e164, phone_key, wa_id, name, source, tags, fields, opted_out_at)
          values (${tenant.id}, ${`+${waId}`}, ${`+${waId}`}, ${waId}, ${o.name === undefined ? `Lead ${i} Person` : o.name}, 'web_form', ${[tag]},
                  ${tx.json((o.fields ?? { city: 'Recife' }) as never)}, ${o.optedOut ? new Date() : null})
          returning id`
        out.push({ id: lead!.id, waId })
      }
      return out
    })
  }

  const createBroadcast = async (tag: string, template: string, extra: object = {}) => {
    const res = await api.inject({
      method: 'POST', url: '/v1/broadcasts', headers: bearer(tenant.adminKey),
      payload: {
        name: `Broadcast ${tag}`, template: { name: template, language: 'en_US' },
        parameters: { body: [{ field: 'first_name', fallback: 'there' }, { field: 'fields.city' }] },
        audience: { type: 'filter', filter: { tags: [tag] } },
        ...extra,
      },
    })
    expect(res.statusCode, res.body).toBe(201)
    return res.json().id as string
  }
  const act = (id: string, action: string) => api.inject({ method: 'POST', url: `/v1/broadcasts/${id}/${action}`, headers: bearer(tenant.adminKey), payload: {} })
  const view = async (id: string) => (await api.inject({ method: 'GET', url: `/v1/broadcasts/${id}`, headers: bearer(tenant.adminKey) })).json()
  const until = async (id: string, check: (v: ReturnType<typeof view> extends Promise<infer T> ? T : never) => boolean, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const v = await view(id)
      if (check(v)) {
        if (process.env.BROADCAST_TEST_TRACE) console.log(new Date().toISOString(), v.status, JSON.stringify(v.stats))
        return v
      }
      if (Date.now() > deadline) {
        const outbox = await db.current.owner`
          select state, count(*)::int as n, min(next_attempt_at) as next, min(call_started_at) as started from whatsapp.outbound_sends
           where requested_by = ${`broadcast:${id}`} group by state`
        const recipients = await db.current.owner`select state, count(*)::int as n from campaigns.broadcast_recipients where broadcast_id = ${id} group by state`
        throw new Error(`broadcast ${id} never got there: ${JSON.stringify({ status: v.status, reason: v.statusReason, detail: v.statusDetail, stats: v.stats, outbox, recipients })}`)
      }
      await sleep(100)
    }
  }
  const sentTo = (waIds: string[]) => {
    const set = new Set(waIds)
    return wa.sent.filter((m) => set.has(m.waId))
  }
  const templateWebhook = (name: string, value: object, field = 'message_template_status_update') =>
    postDelivery(webhooks, f.managementDelivery(number.wabaId, field, { ...value, message_template_name: name, message_template_language: 'en_US' }))

  it('sends each recipient once with parameters from their fields, skips and counts the opted-out, suppressed and incomplete, and tracks delivery, reads and replies', async () => {
    await makeTemplate(db.current.sql, tenant, number, { name: 'city_news', category: 'MARKETING', components: [{ type: 'BODY', text: 'Hi {{1}}, news from {{2}}!' }] })
    const leads = await makeLeads('news', 30, (i) => ({
      name: i === 1 ? null : undefined,
      optedOut: i === 2,
      fields: i === 3 ? {} : { city: i % 2 ? 'Recife' : 'Olinda' },
    }))
    // Lead 4 was erased earlier and is suppressed by its keys (privacy.suppressions), lead 5 has two leads of the same number: one message.
    const { hash } = suppressionRows({ emails: [], phoneKeys: [], waIds: [leads[4]!.waId] })[0]!
    await db.current.owner`insert into privacy.suppressions (tenant_id, key_kind, key_hash) values (${tenant.id}, 'wa_id', ${hash})`

    const id = await createBroadcast('news', 'city_news')
    const started = await act(id, 'start')
    expect(started.statusCode, started.body).toBe(200)
    expect(started.json()).toMatchObject({ status: 'sending', stats: { recipients: 30, skipped: 3, skippedBy: { opted_out: 1, suppressed: 1, missing_parameter: 1 } } })

    const done = await until(id, (v) => v.status === 'completed')
    expect(done.finishedAt).not.toBeNull()
    const sent = sentTo(leads.map((l) => l.waId))
    expect(sent).toHaveLength(27)
    expect(new Set(sent.map((m) => m.waId)).size).toBe(27)
    for (const skipped of [leads[2]!, leads[3]!, leads[4]!]) expect(sent.some((m) => m.waId === skipped.waId)).toBe(false)
    const toLead0 = sent.find((m) => m.waId === leads[0]!.waId)!
    expect(toLead0.body).toMatchObject({ type: 'template', template: { name: 'city_news', components: [{ type: 'body', parameters: [{ type: 'text', text: 'Lead' }, { type: 'text', text: 'Olinda' }] }] } })
    // No name: the fallback.
    expect(sent.find((m) => m.waId === leads[1]!.waId)!.body).toMatchObject({ template: { components: [{ parameters: [{ text: 'there' }, { text: 'Recife' }] }] } })

    // The emulator's sent, delivered and read webhooks come back; lead 0 answers.
    await postDelivery(webhooks, f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, displayPhoneNumber: number.displayPhoneNumber.replace(/\D/g, ''), messages: [f.textMessage({ from: leads[0]!.waId, body: 'Tell me more' })] }))
    // Lead 0's read may land before its reply is applied: wait for both, not for the sum alone.
    const tracked = await until(id, (v) => v.stats.replied === 1 && v.stats.read + v.stats.replied === 27)
    expect(tracked.stats).toMatchObject({ recipients: 30, replied: 1, read: 26, failed: 0, skipped: 3, pending: 0, queued: 0 })

    const list = await api.inject({ method: 'GET', url: `/v1/broadcasts/${id}/recipients?status=skipped`, headers: bearer(tenant.adminKey) })
    expect(list.json().data.map((r: { skipReason: string }) => r.skipReason).sort()).toEqual(['missing_parameter', 'opted_out', 'suppressed'])
    expect(list.json().data.find((r: { skipReason: string }) => r.skipReason === 'missing_parameter').skipDetail).toMatch(/fields\.city/)

    const events = await db.current.owner<{ name: string }[]>`
      select name from analytics.events where tenant_id = ${tenant.id} and properties ->> 'broadcastId' = ${id} order by occurred_at`
    expect(events.map((e) => e.name)).toEqual(['broadcast.started', 'broadcast.completed'])
  })

  it('auto-pauses on a PAUSED template webhook and resumes where it stopped, sending nobody twice', async () => {
    await makeTemplate(db.current.sql, tenant, number, { name: 'weekly_offer', category: 'MARKETING', components: [{ type: 'BODY', text: 'Hi {{1}}, offers in {{2}}.' }] })
    const leads = await makeLeads('offer', 300)
    wa.setRateLimit(undefined)
    const id = await createBroadcast('offer', 'weekly_offer')
    expect((await act(id, 'start')).statusCode).toBe(200)
    await until(id, (v) => v.stats.sent + v.stats.delivered + v.stats.read >= 10)

    // Meta pauses the template for low quality (the webhook goes through the webhooks service and the worker).
    expect((await templateWebhook('weekly_offer', f.templateStatusUpdate({ event: 'PAUSED', name: 'weekly_offer', language: 'en_US', reason: 'NONE' }))).statusCode).toBe(200)
    const paused = await until(id, (v) => v.status === 'paused')
    expect(paused).toMatchObject({ statusReason: 'template_paused', allowedTransitions: ['sending', 'stopped'] })
    // Sends already claimed when the pause committed finish; what still waited in the outbox was cancelled.
    await until(id, (v) => v.stats.queued === 0)
    const atPause = sentTo(leads.map((l) => l.waId)).length
    expect(atPause).toBeLessThan(300)
    await sleep(800)
    expect(sentTo(leads.map((l) => l.waId)).length).toBe(atPause)

    // Resume is refused while the template is paused, then accepted once Meta approves it again.
    const refused = await act(id, 'resume')
    expect(refused.statusCode).toBe(422)
    expect(refused.json().error.details).toMatchObject({ reason: 'template_paused' })
    await templateWebhook('weekly_offer', f.templateStatusUpdate({ event: 'APPROVED', name: 'weekly_offer', language: 'en_US' }))
    for (let i = 0; i < 100 && (await db.current.owner`select status from whatsapp.templates where name = 'weekly_offer'`)[0]!.status !== 'APPROVED'; i++) await sleep(100)
    const resumed = await act(id, 'resume')
    expect(resumed.statusCode, resumed.body).toBe(200)

    await until(id, (v) => v.status === 'completed')
    const sent = sentTo(leads.map((l) => l.waId))
    expect(sent).toHaveLength(300)
    expect(new Set(sent.map((m) => m.waId)).size).toBe(300)
    const names = (await db.current.owner<{ name: string; properties: { reason?: string } }[]>`
      select name, properties from analytics.events where tenant_id = ${tenant.id} and properties ->> 'broadcastId' = ${id} order by occurred_at`)
    expect(names.map((e) => e.name)).toEqual(['broadcast.started', 'broadcast.paused', 'broadcast.resumed', 'broadcast.completed'])
    expect(names[1]!.properties.reason).toBe('template_paused')
  })

  it('auto-pauses when the template quality drops to RED', async () => {
    await makeTemplate(db.current.sql, tenant, number, { name: 'flash_sale', category: 'MARKETING', components: [{ type: 'BODY', text: 'Hi {{1}}, sale in {{2}}.' }] })
    await makeLeads('flash', 200)
    wa.setRateLimit(20)
    const id = await createBroadcast('flash', 'flash_sale')
    await act(id, 'start')
    await until(id, (v) => v.stats.sent + v.stats.delivered + v.stats.read >= 5)
    await templateWebhook('flash_sale', f.templateQualityUpdate({ name: 'flash_sale', language: 'en_US', previousScore: 'YELLOW', newScore: 'RED' }), 'message_template_quality_update')
    const paused = await until(id, (v) => v.status === 'paused')
    expect(paused.statusReason).toBe('template_quality_red')
    expect(paused.stats.pending).toBeGreaterThan(0)
    expect((await act(id, 'stop')).json()).toMatchObject({ status: 'stopped', allowedTransitions: [] })
  })

  it('auto-pauses when failures pass the threshold, with Meta’s codes per recipient', async () => {
    await makeTemplate(db.current.sql, tenant, number, { name: 'reminder_all', components: [{ type: 'BODY', text: 'Hi {{1}} from {{2}}.' }] })
    await makeLeads('fails', 60)
    // A few go out first: with none accepted at all the broadcast would fail (next test), not pause.
    wa.setRateLimit(5)
    const id = await createBroadcast('fails', 'reminder_all', { failureThreshold: 0.3, failureMinSample: 10 })
    await act(id, 'start')
    await until(id, (v) => v.stats.sent + v.stats.delivered + v.stats.read >= 2)
    wa.failNext(131026, 15)
    wa.setRateLimit(RATE)
    const paused = await until(id, (v) => v.status === 'paused')
    expect(paused.statusReason).toBe('failure_threshold')
    // How many failed before the pause depends on how many were accepted first (the rule: at least failureMinSample
    // settled and more than 30% of them failed); under load more get through before the injected failures start.
    expect(Object.keys(paused.stats.failedBy)).toEqual(['131026'])
    expect(paused.stats.failedBy['131026']).toBeGreaterThanOrEqual(4)
    const failed = await api.inject({ method: 'GET', url: `/v1/broadcasts/${id}/recipients?status=failed&limit=5`, headers: bearer(tenant.adminKey) })
    expect(failed.json().data[0]).toMatchObject({ status: 'failed', errorCode: 131026 })
  })

  /** The broadcast's sends in the outbox right now, by state, with their recipients. */
  const sendsOf = (id: string) =>
    db.current.owner<{ state: string; waId: string }[]>`select state, wa_id from whatsapp.outbound_sends where requested_by = ${`broadcast:${id}`}`
  const settledOutbox = async (id: string) => {
    for (let i = 0; i < 300 && (await sendsOf(id)).some((s) => s.state === 'sending' || s.state === 'queued' || s.state === 'in_doubt'); i++) await sleep(50)
  }

  it('a pause cancels what waits in the outbox: after it commits only the claimed sends go, and resume sends everyone exactly once', async () => {
    await makeTemplate(db.current.sql, tenant, number, { name: 'pause_cut', components: [{ type: 'BODY', text: 'Hi {{1}} from {{2}}.' }] })
    const leads = await makeLeads('pausecut', 200)
    const waIds = leads.map((l) => l.waId)
    // No 130429 from the emulator: a claimed send that Meta throttled would be retried after the pause (and go).
    wa.setRateLimit(undefined)
    const id = await createBroadcast('pausecut', 'pause_cut')
    await act(id, 'start')
    await until(id, (v) => v.stats.sent + v.stats.delivered + v.stats.read >= 10)

    const paused = await act(id, 'pause')
    expect(paused.statusCode, paused.body).toBe(200)
    // Right after the commit: nothing of the broadcast waits in the outbox; what was claimed is all that may still go.
    const atPause = await sendsOf(id)
    expect(atPause.filter((s) => s.state === 'queued')).toEqual([])
    const cancelled = atPause.filter((s) => s.state === 'cancelled')
    expect(cancelled.length).toBeGreaterThan(0)
    const claimed = new Set(atPause.filter((s) => s.state !== 'cancelled').map((s) => s.waId))

    await settledOutbox(id)
    await sleep(500)
    const sentWhilePaused = sentTo(waIds)
    expect(new Set(sentWhilePaused.map((m) => m.waId))).toEqual(claimed)
    expect(sentWhilePaused).toHaveLength(claimed.size)
    // The cancelled recipients are pending again, not sent, not lost.
    const v = await view(id)
    expect(v.stats.pending).toBe(200 - claimed.size)
    const [event] = await db.current.owner<{ properties: { reason: string; cancelled: number; requeued: number } }[]>`
      select properties from analytics.events where tenant_id = ${tenant.id} and name = 'broadcast.paused' and properties ->> 'broadcastId' = ${id}`
    expect(event!.properties).toMatchObject({ reason: 'manual', cancelled: cancelled.length, requeued: cancelled.length })

    expect((await act(id, 'resume')).statusCode).toBe(200)
    await until(id, (x) => x.status === 'completed')
    const sent = sentTo(waIds)
    expect(sent).toHaveLength(200)
    expect(new Set(sent.map((m) => m.waId)).size).toBe(200)
  })

  it('a stop cancels what waits in the outbox and records everyone not sent as skipped (stopped)', async () => {
    await makeTemplate(db.current.sql, tenant, number, { name: 'stop_cut', components: [{ type: 'BODY', text: 'Hi {{1}} from {{2}}.' }] })
    const leads = await makeLeads('stopcut', 150)
    wa.setRateLimit(undefined)
    const id = await createBroadcast('stopcut', 'stop_cut')
    await act(id, 'start')
    await until(id, (v) => v.stats.sent + v.stats.delivered + v.stats.read >= 5)
    const stopped = await act(id, 'stop')
    expect(stopped.json()).toMatchObject({ status: 'stopped', allowedTransitions: [] })
    const atStop = await sendsOf(id)
    expect(atStop.filter((s) => s.state === 'queued')).toEqual([])
    const claimed = new Set(atStop.filter((s) => s.state !== 'cancelled').map((s) => s.waId))

    await settledOutbox(id)
    await sleep(500)
    expect(new Set(sentTo(leads.map((l) => l.waId)).map((m) => m.waId))).toEqual(claimed)
    const v = await view(id)
    expect(v.stats).toMatchObject({ pending: 0, queued: 0, skipped: 150 - claimed.size, skippedBy: { stopped: 150 - claimed.size } })
    const list = await api.inject({ method: 'GET', url: `/v1/broadcasts/${id}/recipients?status=skipped&limit=1`, headers: bearer(tenant.adminKey) })
    expect(list.json().data[0]).toMatchObject({ skipReason: 'stopped', skipDetail: 'the broadcast was stopped before this recipient was sent' })
  })

  it('fails for good when not one of the first sends is accepted and Meta refused each one for good', async () => {
    await makeTemplate(db.current.sql, tenant, number, { name: 'gone_at_meta', components: [{ type: 'BODY', text: 'Hi {{1}} from {{2}}.' }] })
    const leads = await makeLeads('allfail', 80)
    // 132001: Meta has no such template (deleted there, and its webhook never reached us).
    wa.failNext(132001, 1_000)
    const id = await createBroadcast('allfail', 'gone_at_meta', { failureMinSample: 10 })
    await act(id, 'start')
    const failed = await until(id, (v) => v.status === 'failed')
    expect(failed).toMatchObject({ statusReason: 'all_sends_failed', allowedTransitions: [] })
    expect(failed.statusDetail).toMatch(/none of the \d+ settled sends was accepted; Meta refused each for good \(132001: \d+\)/)
    expect(failed.finishedAt).not.toBeNull()
    await settledOutbox(id)
    const v = await view(id)
    expect(v.stats.pending).toBe(0)
    expect(v.stats.skippedBy.broadcast_failed).toBeGreaterThan(0)
    expect(v.stats.failed + v.stats.skipped).toBe(80)
    expect(sentTo(leads.map((l) => l.waId))).toHaveLength(0)
    expect((await act(id, 'resume')).statusCode).toBe(409)
    const events = await db.current.owner<{ name: string; dedupeKey: string; properties: { reason: string } }[]>`
      select name, dedupe_key, properties from analytics.events where tenant_id = ${tenant.id} and properties ->> 'broadcastId' = ${id} order by occurred_at`
    expect(events.map((e) => e.name)).toEqual(['broadcast.started', 'broadcast.failed'])
    expect(events[1]).toMatchObject({ dedupeKey: `broadcast:${id}:2:failed`, properties: { reason: 'all_sends_failed' } })
  })

  it('fails for good when Meta deletes the template mid-broadcast, and nobody else is sent', async () => {
    await makeTemplate(db.current.sql, tenant, number, { name: 'deleted_mid', components: [{ type: 'BODY', text: 'Hi {{1}} from {{2}}.' }] })
    const leads = await makeLeads('deleted', 200)
    wa.setRateLimit(undefined)
    const id = await createBroadcast('deleted', 'deleted_mid')
    await act(id, 'start')
    await until(id, (v) => v.stats.sent + v.stats.delivered + v.stats.read >= 5)
    expect((await templateWebhook('deleted_mid', f.templateStatusUpdate({ event: 'DELETED', name: 'deleted_mid', language: 'en_US' }))).statusCode).toBe(200)
    const failed = await until(id, (v) => v.status === 'failed')
    expect(failed).toMatchObject({ statusReason: 'template_deleted', allowedTransitions: [] })
    const atFail = await sendsOf(id)
    expect(atFail.filter((s) => s.state === 'queued')).toEqual([])
    const claimed = new Set(atFail.filter((s) => s.state !== 'cancelled').map((s) => s.waId))
    await settledOutbox(id)
    await sleep(300)
    expect(new Set(sentTo(leads.map((l) => l.waId)).map((m) => m.waId))).toEqual(claimed)
    expect((await view(id)).stats).toMatchObject({ pending: 0, skippedBy: { broadcast_failed: 200 - claimed.size } })
  })

  it("holds the number's 24-hour messaging limit: unique recipients beyond the tier wait, the rest is not sent", async () => {
    const small = await makePhoneNumber(db.current.sql, tenant)
    await db.current.owner`update whatsapp.phone_numbers set messaging_limit = 'TIER_50' where id = ${small.id}`
    await makeTemplate(db.current.sql, tenant, small, { name: 'limited', components: [{ type: 'BODY', text: 'Hi {{1}} from {{2}}.' }] })
    const leads = await makeLeads('limited', 70)
    const id = await createBroadcast('limited', 'limited', { phoneNumberId: small.id })
    await act(id, 'start')
    const waiting = await until(id, (v) => v.statusDetail?.includes('24-hour messaging limit') && v.stats.queued === 0)
    expect(waiting.status).toBe('sending')
    expect(waiting.stats.pending).toBe(20)
    expect(sentTo(leads.map((l) => l.waId))).toHaveLength(50)
  })
})
