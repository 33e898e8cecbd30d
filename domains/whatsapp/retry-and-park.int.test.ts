import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../lib/http/create-server.js'
import { bearer, buildTestApi, buildTestWebhooks, OPERATOR_KEY } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../test/factories/whatsapp.js'
import { count, drainJobs, postDelivery } from '../../test/whatsapp.js'
import { processDeliveries } from './process-deliveries.js'
import * as f from './webhook/fixtures.js'

describe('a delivery that keeps failing is retried, then parked for an operator, and can be replayed', () => {
  const db = useTestDatabase()
  let webhooks: App
  let api: App
  let tenant: TestTenant
  let number: TestNumber
  beforeAll(async () => {
    webhooks = await buildTestWebhooks(db.current)
    api = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    number = await makePhoneNumber(db.current.sql, tenant)
    // A database-level failure for one message: the kind of error processing cannot fix by itself.
    await db.current.owner.unsafe(`
      create function public.refuse_poison() returns trigger language plpgsql as $$
      begin raise exception 'poison message %', new.wamid; end $$;
      create trigger refuse_poison before insert on whatsapp.messages for each row
        when (new.wamid like 'wamid.POISON%') execute function public.refuse_poison();`)
  })
  afterAll(async () => {
    await webhooks.close()
    await api.close()
  })

  const scope = () => ({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId })
  const delivery = async (id: string) =>
    (await db.current.owner<{ status: string; attempts: number; lastError: string | null }[]>`select status, attempts, last_error from whatsapp.webhook_deliveries where id = ${id}`)[0]!

  it('lets the good deliveries of a batch through when one fails', async () => {
    const good = await postDelivery(webhooks, f.delivery({ ...scope(), messages: [f.textMessage({ from: '5511987650001', body: 'fine' })] }))
    const bad = await postDelivery(webhooks, f.delivery({ ...scope(), messages: [f.textMessage({ from: '5511987650002', body: 'bad', id: 'wamid.POISON-1' })] }))
    const result = await processDeliveries(db.current.sql, [good.json().deliveryId, bad.json().deliveryId])
    expect(result.processed).toEqual([good.json().deliveryId])
    expect(result.failed).toEqual([{ deliveryId: bad.json().deliveryId, error: expect.stringContaining('poison message wamid.POISON-1') }])
  })

  it('retries with backoff, parks with the error, shows it to operators, and applies it once on replay', async () => {
    const msg = f.textMessage({ from: '5511987650003', body: 'will fail', id: 'wamid.POISON-2' })
    const { deliveryId } = (await postDelivery(webhooks, f.delivery({ ...scope(), messages: [msg] }))).json()
    await drainJobs(db.current)
    // Once in the batch, once alone right away; the next attempt is backed off.
    expect(await delivery(deliveryId)).toMatchObject({ status: 'failed', attempts: 2 })
    const [job] = await db.current.owner<{ attempts: number; runAt: Date }[]>`select attempts, run_at from graphile_worker._private_jobs where key = ${`whatsapp:delivery:${deliveryId}`}`
    expect(job!.attempts).toBe(1)
    expect(job!.runAt.getTime()).toBeGreaterThan(Date.now())

    // Make each later attempt due now instead of waiting e^n seconds, and allow 3 in all.
    await db.current.owner`update graphile_worker._private_jobs set max_attempts = 3 where key = ${`whatsapp:delivery:${deliveryId}`}`
    for (let attempt = 2; attempt <= 3; attempt++) {
      await db.current.owner`update graphile_worker._private_jobs set run_at = now() where key = ${`whatsapp:delivery:${deliveryId}`}`
      await drainJobs(db.current)
    }
    const parked = await delivery(deliveryId)
    expect(parked).toMatchObject({ status: 'parked', attempts: 4 })
    expect(parked.lastError).toContain('poison message wamid.POISON-2')
    expect(await count(db.current, 'whatsapp.messages', `wamid = 'wamid.POISON-2'`)).toBe(0)

    const list = await api.inject({ method: 'GET', url: '/v1/ops/whatsapp/deliveries?status=parked', headers: bearer(OPERATOR_KEY) })
    expect(list.json().data.map((d: { id: string }) => d.id)).toContain(deliveryId)
    expect(list.json().data.find((d: { id: string }) => d.id === deliveryId).lastError).toContain('poison')

    // The operator fixes the cause and replays; it applies once, even when replayed twice.
    await db.current.owner.unsafe('drop trigger refuse_poison on whatsapp.messages')
    for (let i = 0; i < 2; i++) {
      const replay = await api.inject({ method: 'POST', url: `/v1/ops/whatsapp/deliveries/${deliveryId}/replay`, headers: bearer(OPERATOR_KEY) })
      expect(replay.statusCode).toBe(202)
    }
    await drainJobs(db.current)
    expect(await delivery(deliveryId)).toMatchObject({ status: 'processed', lastError: null })
    expect(await count(db.current, 'whatsapp.messages', `wamid = 'wamid.POISON-2'`)).toBe(1)
    expect(await count(db.current, 'marketing.lead_interactions', `dedupe_key = 'wa:msg:wamid.POISON-2'`)).toBe(1)
  })

  it('releases quarantined items when their number is registered and the delivery replayed', async () => {
    const msg = f.textMessage({ from: '5511987650004', body: 'early bird' })
    const { deliveryId } = (await postDelivery(webhooks, f.delivery({ wabaId: '777000111222333', phoneNumberId: '777000111222444', messages: [msg] }))).json()
    await drainJobs(db.current)
    const open = await api.inject({ method: 'GET', url: '/v1/ops/whatsapp/quarantine', headers: bearer(OPERATOR_KEY) })
    expect(open.json().data.find((q: { deliveryId: string }) => q.deliveryId === deliveryId)).toMatchObject({ kind: 'message', routeKey: '777000111222444' })

    await makePhoneNumber(db.current.sql, tenant, { phoneNumberId: '777000111222444', wabaId: '777000111222333' })
    await api.inject({ method: 'POST', url: `/v1/ops/whatsapp/deliveries/${deliveryId}/replay`, headers: bearer(OPERATOR_KEY) })
    await drainJobs(db.current)
    expect(await count(db.current, 'whatsapp.messages', `wamid = '${msg.id}'`)).toBe(1)
    const after = await api.inject({ method: 'GET', url: '/v1/ops/whatsapp/quarantine', headers: bearer(OPERATOR_KEY) })
    expect(after.json().data.find((q: { deliveryId: string }) => q.deliveryId === deliveryId)).toBeUndefined()
  })

  describe('operator routes', () => {
    it('refuse tenant keys (403) and unknown deliveries (404)', async () => {
      expect((await api.inject({ method: 'GET', url: '/v1/ops/whatsapp/deliveries', headers: bearer(tenant.adminKey) })).statusCode).toBe(403)
      expect((await api.inject({ method: 'POST', url: '/v1/ops/whatsapp/deliveries/1/replay', headers: bearer(tenant.adminKey) })).statusCode).toBe(403)
      expect((await api.inject({ method: 'POST', url: '/v1/ops/whatsapp/deliveries/987654321/replay', headers: bearer(OPERATOR_KEY) })).statusCode).toBe(404)
      expect((await api.inject({ method: 'GET', url: '/v1/ops/whatsapp/deliveries?status=lost', headers: bearer(OPERATOR_KEY) })).statusCode).toBe(400)
    })
  })
})
