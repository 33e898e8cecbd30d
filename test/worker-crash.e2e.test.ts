import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { App } from '../lib/http/create-server.js'
import * as f from '../domains/whatsapp/webhook/fixtures.js'
import { buildTestWebhooks } from './apps.js'
import { useTestDatabase } from './db.js'
import { makeTenant } from './factories/tenants.js'
import { makePhoneNumber, type TestNumber } from './factories/whatsapp.js'
import { startEntry, waitFor, type Started } from './processes.js'
import { count, drainJobs, postDelivery } from './whatsapp.js'

// Short, so the test runs in seconds; production's default is 30 s (beats every 5 s, silent workers unlocked after 30 s).
const HEARTBEAT_TIMEOUT_MS = 2_000

describe('a worker killed in the middle of a batch', () => {
  const db = useTestDatabase()
  let webhooks: App
  let number: TestNumber
  const workers: Started[] = []
  beforeAll(async () => {
    webhooks = await buildTestWebhooks(db.current)
    number = await makePhoneNumber(db.current.sql, await makeTenant(db.current.sql))
    // Holds a batch's transaction open half-way through, while the message's wamid is listed in public.stalls.
    await db.current.owner.unsafe(`
      create table public.stalls (wamid text primary key, seconds float not null);
      grant select on public.stalls to app_user;
      create function public.stall() returns trigger language plpgsql as $$
      begin perform pg_sleep(s.seconds) from public.stalls s where s.wamid = new.wamid; return new; end $$;
      create trigger stall before insert on whatsapp.messages for each row execute function public.stall();`)
  })
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')))
    await webhooks.close()
  })

  const startWorkerProcess = () => {
    const worker = startEntry('services/workers/main.ts', {
      DATABASE_URL: db.current.ownerUrl,
      DATABASE_RUNTIME_PASSWORD: inject('testDb').runtimePassword,
      AUTO_SEED: 'false',
      WORKER_POLL_INTERVAL_MS: '100',
      WORKER_CONCURRENCY: '2',
      WORKER_HEARTBEAT_TIMEOUT_MS: String(HEARTBEAT_TIMEOUT_MS),
      LOG_LEVEL: 'warn',
    })
    workers.push(worker)
    return worker
  }
  const beatingWorkers = async () =>
    Number((await db.current.owner`select count(*)::int as n from ops.worker_heartbeats where beat_at > now() - interval '1 second'`)[0]!.n)
  const stalledBackends = () =>
    db.current.owner<{ pid: number }[]>`select pid from pg_stat_activity where datname = current_database() and wait_event = 'PgSleep' and query like '%insert into whatsapp.messages%'`
  const messagesFrom = (from: string) => count(db.current, 'whatsapp.messages', `wa_id = '${from}'`)
  const deliveryJob = async () =>
    (await db.current.owner<{ lockedBy: string | null; attempts: number }[]>`
      select locked_by, attempts from graphile_worker._private_jobs
       where task_id = (select id from graphile_worker._private_tasks where identifier = 'whatsapp__process_deliveries')`)[0] ?? null
  /** A message whose insert sleeps `seconds` until unstall(). */
  const stall = async (seconds: number) => {
    const wamid = f.newWamid()
    await db.current.owner`insert into public.stalls values (${wamid}, ${seconds})`
    return wamid
  }
  const unstall = (wamid: string) => db.current.owner`delete from public.stalls where wamid = ${wamid}`
  /** Posts one delivery with a text message per entry; an entry starting with wamid. is that message's id. */
  const post = async (from: string, bodies: string[]) => {
    const messages = bodies.map((body, i) => (body.startsWith('wamid.') ? f.textMessage({ from, body: `m${i}`, id: body }) : f.textMessage({ from, body })))
    const res = await postDelivery(webhooks, f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages }))
    expect(res.statusCode).toBe(200)
  }

  it('still hands back, after ten minutes, the jobs of a worker that never beat, but not those of one that beats', async () => {
    // No worker process runs yet: the jobs below are locked by invented workers, as a release without heartbeats would.
    await post('5511900000001', ['never beat'])
    await post('5511900000002', ['beats'])
    await db.current.owner`
      with jobs as (select id, row_number() over (order by id) as n from graphile_worker._private_jobs
                     where task_id = (select id from graphile_worker._private_tasks where identifier = 'whatsapp__process_deliveries'))
      update graphile_worker._private_jobs j
         set locked_by = case when jobs.n = 1 then 'worker-never-beat' else 'worker-beating' end, locked_at = now() - interval '11 minutes'
        from jobs where jobs.id = j.id`
    await db.current.owner`insert into ops.worker_heartbeats (worker_id, process) values ('worker-beating', 'test:1')`
    await db.current.owner`select graphile_worker.add_job('ops__unlock_stale_jobs')`
    await drainJobs(db.current)

    expect(await messagesFrom('5511900000001')).toBe(1)
    expect(await messagesFrom('5511900000002')).toBe(0)
    expect((await deliveryJob())?.lockedBy).toBe('worker-beating')
    // Hand that one back too, so it does not linger in the tests below.
    await db.current.owner`delete from ops.worker_heartbeats where worker_id = 'worker-beating'`
    await db.current.owner`select graphile_worker.force_unlock_workers(array['worker-beating'])`
    await drainJobs(db.current)
    expect(await messagesFrom('5511900000002')).toBe(1)
  }, 30_000)

  it('leaves nothing half-applied, and a second worker redoes the batch within the heartbeat timeout, exactly once', async () => {
    const from = '5511987651234'
    const first = startWorkerProcess()
    const second = startWorkerProcess()
    await waitFor(async () => (await beatingWorkers()) >= 4, 30_000, 'both workers beating (two worker ids each)')

    const stalled = await stall(60)
    await post(from, Array.from({ length: 10 }, (_, i) => (i === 5 ? stalled : `m${i}`)))
    // Wait until one worker is inside the batch: five messages inserted (uncommitted), the sixth stalled.
    await waitFor(async () => (await stalledBackends()).length > 0, 30_000, 'a worker to stall mid-batch')
    const job = await deliveryJob()
    const holder = job!.lockedBy!
    const [holderBeat] = await db.current.owner<{ process: string }[]>`select process from ops.worker_heartbeats where worker_id = ${holder}`
    const victim = holderBeat!.process.endsWith(`:${first.child.pid}`) ? first : second
    const survivor = victim === first ? second : first

    victim.child.kill('SIGKILL')
    await victim.exited
    const killedAt = Date.now()
    // The server notices the dead client when it next talks to it; end the stalled backend as the network would.
    await db.current.owner`select pg_terminate_backend(pid) from pg_stat_activity where wait_event = 'PgSleep' and datname = current_database()`
    expect(await messagesFrom(from)).toBe(0)
    await unstall(stalled)

    await waitFor(async () => (await messagesFrom(from)) === 10, 60_000, 'the batch to be redone')
    const recoveredInMs = Date.now() - killedAt
    // Within a minute of the death, as promised; with this test's 2 s timeout it is a few seconds.
    expect(recoveredInMs).toBeLessThan(60_000)
    expect(recoveredInMs).toBeGreaterThanOrEqual(HEARTBEAT_TIMEOUT_MS / 2)

    expect(await count(db.current, 'marketing.lead_interactions', `lead_id in (select id from marketing.leads where wa_id = '${from}')`)).toBe(10)
    expect(await count(db.current, 'whatsapp.webhook_deliveries', `status = 'processed' and payload::text like '%${from}%'`)).toBe(1)
    await waitFor(async () => (await deliveryJob()) === null, 10_000, 'the job to be completed')
    expect(survivor.child.exitCode).toBeNull()
    expect(survivor.output()).not.toMatch(/TypeError|Unhandled/)
  }, 90_000)

  it('never hands the job of a live worker that is slow to another worker', async () => {
    const from = '5511987650002'
    startWorkerProcess() // two live workers now, each free to take over the other's jobs if they were silent
    await waitFor(async () => (await beatingWorkers()) >= 4, 30_000, 'both workers beating')
    // Three heartbeat timeouts long.
    await post(from, [await stall(6)])
    await waitFor(async () => (await stalledBackends()).length > 0, 30_000, 'a worker to run the slow batch')
    const holders = new Set<string>()
    let maxAttempts = 0
    let maxRunning = 0
    while ((await messagesFrom(from)) === 0) {
      const job = await deliveryJob()
      if (job?.lockedBy) holders.add(job.lockedBy)
      maxAttempts = Math.max(maxAttempts, job?.attempts ?? 0)
      maxRunning = Math.max(maxRunning, (await stalledBackends()).length)
      await new Promise((r) => setTimeout(r, 200))
    }
    expect(holders.size).toBe(1)
    expect(maxAttempts).toBe(1)
    expect(maxRunning).toBe(1)
    expect(await messagesFrom(from)).toBe(1)
  }, 60_000)

  it('stops taking and finishing work when it cannot record its heartbeat, and resumes without exiting when it can', async () => {
    const from = '5511987650003'
    const later = '5511987650004'
    const alive = workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null)
    const stalled = await stall(4)
    await post(from, ['f0', stalled, 'f2'])
    await waitFor(async () => (await stalledBackends()).length > 0, 30_000, 'a worker to stall mid-batch')

    // The heartbeat table refuses this role; the job queue itself still works. Every worker must fence itself.
    await db.current.owner.unsafe('revoke insert, update on ops.worker_heartbeats from app_user')
    try {
      await waitFor(async () => alive.every((w) => w.output().includes('stopping this runner')), 10_000, 'every worker to fence itself')
      expect((await stalledBackends()).length).toBe(1) // fenced before the stalled batch could finish
      await post(later, ['posted while fenced'])
      // The stalled statement finishes its sleep; its worker has cut its connection, so the batch must not commit.
      await waitFor(async () => (await stalledBackends()).length === 0, 15_000, 'the stalled statement to end')
      await new Promise((r) => setTimeout(r, HEARTBEAT_TIMEOUT_MS))
      expect(await messagesFrom(from)).toBe(0)
      expect(await messagesFrom(later)).toBe(0)
    } finally {
      await db.current.owner.unsafe('grant insert, update on ops.worker_heartbeats to app_user')
    }
    await unstall(stalled)

    await waitFor(async () => (await messagesFrom(from)) === 3 && (await messagesFrom(later)) === 1, 30_000, 'both batches to be applied after the fence')
    expect(await count(db.current, 'marketing.lead_interactions', `lead_id in (select id from marketing.leads where wa_id = '${from}')`)).toBe(3)
    for (const w of alive) expect(w.child.exitCode).toBeNull()
  }, 60_000)
})
