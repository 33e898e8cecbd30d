import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { App } from '../lib/http/create-server.js'
import * as f from '../domains/whatsapp/webhook/fixtures.js'
import { buildTestWebhooks } from './apps.js'
import { useTestDatabase } from './db.js'
import { makeTenant } from './factories/tenants.js'
import { makePhoneNumber, type TestNumber } from './factories/whatsapp.js'
import { startEntry, waitFor, type Started } from './processes.js'
import { count, drainJobs, postDelivery } from './whatsapp.js'

describe('a worker killed in the middle of a batch', () => {
  const db = useTestDatabase()
  let webhooks: App
  let number: TestNumber
  let worker: Started | undefined
  beforeAll(async () => {
    webhooks = await buildTestWebhooks(db.current)
    number = await makePhoneNumber(db.current.sql, await makeTenant(db.current.sql))
    // Holds the batch's transaction open half-way through, so the kill lands in the middle of it.
    await db.current.owner.unsafe(`
      create function public.stall() returns trigger language plpgsql as $$ begin perform pg_sleep(60); return new; end $$;
      create trigger stall before insert on whatsapp.messages for each row when (new.wamid = 'wamid.STALL') execute function public.stall();`)
  })
  afterAll(async () => {
    await worker?.stop('SIGKILL')
    await webhooks.close()
  })

  it('leaves nothing half-applied, and the redone work ends applied exactly once', async () => {
    const from = '5511987651234'
    const messages = Array.from({ length: 10 }, (_, i) => f.textMessage({ from, body: `m${i}`, ...(i === 5 ? { id: 'wamid.STALL' } : {}) }))
    expect((await postDelivery(webhooks, f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages }))).statusCode).toBe(200)

    worker = startEntry('services/workers/main.ts', {
      DATABASE_URL: db.current.ownerUrl,
      DATABASE_RUNTIME_PASSWORD: inject('testDb').runtimePassword,
      AUTO_SEED: 'false',
      WORKER_POLL_INTERVAL_MS: '100',
      LOG_LEVEL: 'warn',
    })
    // Wait until the worker is inside the batch: five messages inserted (uncommitted), the sixth stalled.
    await waitFor(async () => (await db.current.owner`select 1 from pg_stat_activity where query like '%insert into whatsapp.messages%' and wait_event = 'PgSleep'`).length > 0, 30_000, 'the worker to stall mid-batch')
    worker.child.kill('SIGKILL')
    await worker.exited
    // The server notices the dead client when it next talks to it; end the stalled backend as the network would.
    await db.current.owner`select pg_terminate_backend(pid) from pg_stat_activity where wait_event = 'PgSleep' and datname = current_database()`

    expect(await count(db.current, 'whatsapp.messages', `wa_id = '${from}'`)).toBe(0)
    expect(await count(db.current, 'marketing.lead_interactions', `dedupe_key like 'wa:msg:%' and lead_id in (select id from marketing.leads where wa_id = '${from}')`)).toBe(0)
    const [job] = await db.current.owner<{ lockedBy: string | null }[]>`select locked_by from graphile_worker._private_jobs where task_id = (select id from graphile_worker._private_tasks where identifier = 'whatsapp__process_deliveries')`
    expect(job!.lockedBy).not.toBeNull()

    // Later: the dead worker's lock is stale, the crontab's unlock task hands the job back, and it is redone.
    await db.current.owner.unsafe('drop trigger stall on whatsapp.messages')
    await db.current.owner`update graphile_worker._private_jobs set locked_at = now() - interval '11 minutes' where locked_by is not null`
    await db.current.owner`select graphile_worker.add_job('ops__unlock_stale_jobs')`
    await drainJobs(db.current)

    expect(await count(db.current, 'whatsapp.messages', `wa_id = '${from}'`)).toBe(10)
    expect(await count(db.current, 'marketing.lead_interactions', `lead_id in (select id from marketing.leads where wa_id = '${from}')`)).toBe(10)
    expect(await count(db.current, 'whatsapp.webhook_deliveries', `status = 'processed'`)).toBe(1)
  }, 90_000)
})
