import { describe, expect, it } from 'vitest'
import { withTenant } from '../../../lib/db.js'
import { useTestDatabase } from '../../../test/db.js'
import { makeTemplate, makeWhatsAppLead } from '../../../test/factories/conversations-rows.js'
import { makeTenant, type TestTenant } from '../../../test/factories/tenants.js'
import { makePhoneNumber, testSecrets, type TestNumber } from '../../../test/factories/whatsapp.js'
import { updatePhoneNumber } from '../../whatsapp/numbers.js'
import { markFailed } from '../../whatsapp/outbound/queries.js'
import { dispatchBroadcast } from './dispatcher.js'
import { createBroadcast, getBroadcast, pauseBroadcast, resumeBroadcast, startBroadcast, stopBroadcast } from './service.js'

/**
 * When a broadcast fails (final, with the reason) and when it only pauses (a person can fix it and resume), driven
 * step by step through the real dispatcher against PostgreSQL; the sends themselves are the outbox's (not called here:
 * what the dispatcher queued stays `queued` in the outbox, as it would for the ~1.5 s before the sender claims it).
 */
describe('broadcast outcomes: failed for good, or paused until fixed', () => {
  const db = useTestDatabase()

  async function setUp(leads = 6, extra: { failureMinSample?: number } = {}) {
    const tenant = await makeTenant(db.current.sql)
    const number = await makePhoneNumber(db.current.sql, tenant)
    const template = await makeTemplate(db.current.sql, tenant, number, { name: 'outcome', components: [{ type: 'BODY', text: 'Hello' }] })
    const ids: string[] = []
    for (let i = 0; i < leads; i++) ids.push((await makeWhatsAppLead(db.current.sql, tenant, { number })).id)
    const who = { tenantId: tenant.id, actor: 'api_key:test' }
    const b = await createBroadcast(db.current.sql, who, { name: 'Outcome', phoneNumberId: number.id, template: { name: template.name, language: template.language }, parameters: { body: [], buttons: [] }, audience: { type: 'list', leadIds: ids }, ...extra })
    await startBroadcast(db.current.sql, who, b.id)
    return { tenant, number, template, who, id: b.id }
  }
  // One dispatcher step (runForMs 0); the outbox holds 1.5 s of sends: three recipients at 2/s.
  const step = (tenant: TestTenant, id: string, ratePerSecond = 2) => dispatchBroadcast({ sql: db.current.sql, ratePerSecond, runForMs: 0, tickMs: 10 }, tenant.id, id)
  const events = (tenant: TestTenant, id: string) =>
    db.current.owner<{ name: string; dedupeKey: string; properties: Record<string, unknown> }[]>`
      select name, dedupe_key, properties from analytics.events where tenant_id = ${tenant.id} and properties ->> 'broadcastId' = ${id} order by occurred_at, name`
  const outbox = (id: string) =>
    db.current.owner<{ state: string }[]>`select state from whatsapp.outbound_sends where requested_by = ${`broadcast:${id}`}`.then((r) => r.map((x) => x.state).sort())
  const removeNumber = (n: TestNumber) => db.current.owner`delete from whatsapp.phone_numbers where id = ${n.id}`

  it('fails when its number is removed: final, with the reason, everyone not sent skipped, one broadcast.failed event', async () => {
    const { tenant, number, who, id } = await setUp()
    expect(await step(tenant, id)).toEqual({ kind: 'continue', queued: 3 })
    await removeNumber(number)
    expect(await step(tenant, id)).toEqual({ kind: 'finished', status: 'failed' })
    const v = await getBroadcast(db.current.sql, tenant.id, id)
    expect(v).toMatchObject({ status: 'failed', statusReason: 'number_gone', statusDetail: 'the WhatsApp number was removed', allowedTransitions: [] })
    expect(v.finishedAt).not.toBeNull()
    // The three queued went with the number's messages (their fate is unknown, so they stay queued); the rest skipped.
    expect(v.stats).toMatchObject({ pending: 0, skipped: 3, skippedBy: { broadcast_failed: 3 } })
    await expect(resumeBroadcast(db.current.sql, who, id)).rejects.toMatchObject({ code: 'CONFLICT' })
    await expect(stopBroadcast(db.current.sql, who, id)).rejects.toMatchObject({ code: 'CONFLICT' })
    // A later run of the dispatcher changes nothing and records nothing more.
    expect(await step(tenant, id)).toEqual({ kind: 'finished', status: 'failed' })
    const e = await events(tenant, id)
    expect(e.map((x) => x.name)).toEqual(['broadcast.started', 'broadcast.failed'])
    expect(e[1]).toMatchObject({ dedupeKey: `broadcast:${id}:2:failed`, properties: { reason: 'number_gone', cancelled: 0, notSent: 3 } })
  })

  it('fails when its template is deleted, cancelling what waits in the outbox', async () => {
    const { tenant, template, id } = await setUp()
    await step(tenant, id)
    expect(await outbox(id)).toEqual(['queued', 'queued', 'queued'])
    await db.current.owner`delete from whatsapp.templates where id = ${template.id}`
    expect(await step(tenant, id)).toEqual({ kind: 'finished', status: 'failed' })
    const v = await getBroadcast(db.current.sql, tenant.id, id)
    expect(v).toMatchObject({ status: 'failed', statusReason: 'template_deleted', stats: { pending: 0, queued: 0, skipped: 6, skippedBy: { broadcast_failed: 6 } } })
    expect(await outbox(id)).toEqual(['cancelled', 'cancelled', 'cancelled'])
    const messages = await db.current.owner<{ status: string; wamid: string | null }[]>`
      select m.status, m.wamid from whatsapp.messages m join whatsapp.outbound_sends s on s.message_id = m.id where s.requested_by = ${`broadcast:${id}`}`
    expect(messages).toEqual(Array(3).fill({ status: 'cancelled', wamid: null }))
    expect((await events(tenant, id)).at(-1)).toMatchObject({ name: 'broadcast.failed', properties: { reason: 'template_deleted', cancelled: 3, notSent: 6 } })
  })

  it('fails when Meta reports the template deleted (DELETED, PENDING_DELETION)', async () => {
    for (const status of ['DELETED', 'PENDING_DELETION']) {
      const { tenant, template, id } = await setUp(2)
      await withTenant(db.current.sql, tenant.id, (tx) => tx`update whatsapp.templates set status = ${status} where id = ${template.id}`)
      expect(await step(tenant, id)).toEqual({ kind: 'finished', status: 'failed' })
      expect((await getBroadcast(db.current.sql, tenant.id, id)).statusReason).toBe('template_deleted')
    }
  })

  it('only pauses on a rejected token or a disabled number, which a person can fix; resume is refused until then', async () => {
    const { tenant, number, who, id } = await setUp()
    await step(tenant, id)
    await db.current.owner`update whatsapp.phone_numbers set token_invalid_at = now() where id = ${number.id}`
    expect(await step(tenant, id)).toEqual({ kind: 'finished', status: 'paused' })
    const paused = await getBroadcast(db.current.sql, tenant.id, id)
    expect(paused).toMatchObject({ status: 'paused', statusReason: 'number_unavailable', allowedTransitions: ['sending', 'stopped'] })
    // The auto-pause took the three waiting messages back out of the outbox; their recipients are pending again.
    expect(paused.stats).toMatchObject({ pending: 6, queued: 0 })
    expect(await outbox(id)).toEqual(['cancelled', 'cancelled', 'cancelled'])
    await expect(resumeBroadcast(db.current.sql, who, id)).rejects.toMatchObject({ code: 'UNPROCESSABLE', details: { reason: 'number_unavailable' } })

    await updatePhoneNumber(db.current.sql, testSecrets, tenant.id, 'test', number.id, { accessToken: 'EAAG-rotated-token-0000000000000000' })
    expect((await resumeBroadcast(db.current.sql, who, id)).status).toBe('sending')
    await updatePhoneNumber(db.current.sql, testSecrets, tenant.id, 'test', number.id, { status: 'disabled' })
    expect(await step(tenant, id)).toEqual({ kind: 'finished', status: 'paused' })
    expect((await getBroadcast(db.current.sql, tenant.id, id)).statusDetail).toBe('the WhatsApp number is disabled')
  })

  it('a manual pause puts the waiting recipients back to pending; resume queues each of them again, once', async () => {
    const { tenant, who, id } = await setUp()
    await step(tenant, id)
    const paused = await pauseBroadcast(db.current.sql, who, id)
    expect(paused.stats).toMatchObject({ pending: 6, queued: 0 })
    await resumeBroadcast(db.current.sql, who, id)
    expect(await step(tenant, id, 4)).toEqual({ kind: 'continue', queued: 6 })
    // Six recipients, six live messages (and the three cancelled ones), nobody queued twice.
    expect(await outbox(id)).toEqual([...Array(3).fill('cancelled'), ...Array(6).fill('queued')])
    const live = await db.current.owner<{ n: number; people: number }[]>`
      select count(*)::int as n, count(distinct wa_id)::int as people from whatsapp.outbound_sends where requested_by = ${`broadcast:${id}`} and state = 'queued'`
    expect(live[0]).toEqual({ n: 6, people: 6 })
    const stopped = await stopBroadcast(db.current.sql, who, id)
    expect(stopped.stats).toMatchObject({ pending: 0, queued: 0, skippedBy: { stopped: 6 } })
    expect(await outbox(id)).toEqual(Array(9).fill('cancelled'))
  })

  it('fails when none of the sample was accepted and Meta refused each for good; retried-out failures only pause', async () => {
    // What the sender records for each of the three queued sends (the outbox's own markFailed).
    const failAll = async (tenant: TestTenant, id: string, reason: string, code: number) => {
      const sends = await db.current.owner<{ messageId: string }[]>`select message_id from whatsapp.outbound_sends where requested_by = ${`broadcast:${id}`} and state = 'queued'`
      await withTenant(db.current.sql, tenant.id, async (tx) => {
        for (const s of sends) await markFailed(tx, s.messageId, { reason, code, title: 'test', error: { code } })
      })
    }
    const verdict = await setUp(6, { failureMinSample: 3 })
    await step(verdict.tenant, verdict.id)
    await failAll(verdict.tenant, verdict.id, '131026: Message undeliverable', 131026)
    expect(await step(verdict.tenant, verdict.id)).toEqual({ kind: 'finished', status: 'failed' })
    const failed = await getBroadcast(db.current.sql, verdict.tenant.id, verdict.id)
    expect(failed).toMatchObject({ statusReason: 'all_sends_failed', stats: { failed: 3, failedBy: { 131026: 3 }, skippedBy: { broadcast_failed: 3 } } })
    expect(failed.statusDetail).toBe('none of the 3 settled sends was accepted; Meta refused each for good (131026: 3)')

    // The same code, but the sender gave up retrying (its last answer was transient): someone should look, not end it.
    const retried = await setUp(6, { failureMinSample: 3 })
    await step(retried.tenant, retried.id)
    await failAll(retried.tenant, retried.id, 'gave up after 8 attempts; last error 131026: Message undeliverable', 131026)
    expect(await step(retried.tenant, retried.id)).toEqual({ kind: 'finished', status: 'paused' })
    expect((await getBroadcast(db.current.sql, retried.tenant.id, retried.id)).statusReason).toBe('failure_threshold')
  })
})
