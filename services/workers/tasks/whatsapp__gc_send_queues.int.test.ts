import { randomUUID } from 'node:crypto'
import { makeWorkerUtils } from 'graphile-worker'
import { describe, expect, it } from 'vitest'
import { broadcastQueueName, deleteLegacyBroadcastQueues } from '../../../domains/campaigns/broadcasts/queries.js'
import { botQueueName, deleteLegacyBotQueues } from '../../../domains/conversations/queries.js'
import { deleteLegacySendQueues, sendJobKey } from '../../../domains/whatsapp/outbound/queries.js'
import { testConfig, testLogger } from '../../../test/apps.js'
import { useTestDatabase } from '../../../test/db.js'
import { drainJobs } from '../../../test/whatsapp.js'
import { armSelfSchedulingJobs, LEGACY_SEND_QUEUE_SWEEP_DELAY_SECONDS } from './index.js'

describe('sweeping the queue rows of the one-queue-per-recipient sender', () => {
  const db = useTestDatabase()
  const queues = async () =>
    (await db.current.owner<{ queueName: string }[]>`select queue_name from graphile_worker._private_job_queues order by queue_name`).map((r) => r.queueName)
  /** As the sender before the 256 shared queues did: its queue name was what sendJobKey is now (number, pseudonym). */
  const legacyQueue = () => sendJobKey(randomUUID(), `55119${Math.floor(Math.random() * 1e8)}`)
  const addJob = (task: string, queue: string, runAt = 'now()') =>
    db.current.owner.unsafe(`select (graphile_worker.add_job($1, '{}'::json, queue_name := $2, job_key := $2, run_at := ${runAt})).id::text as id`, [task, queue])
      .then((r) => r[0]!.id as string)

  it('deletes empty unlocked legacy queues and keeps those with a job, locked ones and live ones; jobs still run after', async () => {
    const o = db.current.owner
    const done = [legacyQueue(), legacyQueue(), legacyQueue()]
    for (const q of done) {
      const id = await addJob('whatsapp__send_message', q)
      await o`select graphile_worker.complete_jobs(array[${id}]::bigint[])`
    }
    const pending = legacyQueue()
    const pendingJob = await addJob('whatsapp__prune_deliveries', pending, `now() + interval '1 day'`)
    const locked = legacyQueue()
    await o`insert into graphile_worker._private_job_queues (queue_name, locked_at, locked_by) values (${locked}, now(), 'worker-elsewhere')`
    const liveSend = 'wa-send:7'
    const bot = 'bot:7'
    await o`insert into graphile_worker._private_job_queues (queue_name) values (${liveSend}), (${bot})`
    expect(await queues()).toEqual(expect.arrayContaining([...done, pending, locked, liveSend, bot]))
    expect((await o`select count(*)::int as n from graphile_worker._private_jobs`)[0]!.n).toBe(1)

    await o`select graphile_worker.add_job('whatsapp__gc_send_queues', '{}'::json)`
    await drainJobs(db.current)

    const left = await queues()
    for (const q of done) expect(left).not.toContain(q)
    expect(left).toEqual(expect.arrayContaining([pending, locked, liveSend, bot]))
    expect((await o<{ id: string }[]>`select id::text from graphile_worker._private_jobs`).map((r) => r.id)).toEqual([pendingJob])

    // The kept queue's job and a job in a live queue still run.
    await o`update graphile_worker._private_jobs set run_at = now() where id = ${pendingJob}`
    await addJob('whatsapp__prune_deliveries', liveSend)
    await drainJobs(db.current)
    expect((await o`select count(*)::int as n from graphile_worker._private_jobs`)[0]!.n).toBe(0)

    // Once its job is done, the pending one's queue goes on the next run; running again changes nothing else.
    await o`select graphile_worker.add_job('whatsapp__gc_send_queues', '{}'::json)`
    await drainJobs(db.current)
    expect(await queues()).not.toContain(pending)
    expect(await queues()).toEqual(expect.arrayContaining([locked, liveSend, bot]))
  })

  it("deletes the bot's per-conversation and the dispatcher's per-broadcast queues the same way, never the shared ones", async () => {
    const o = db.current.owner
    const kinds = [
      { prefix: 'bot', task: 'conversations__run_bot', live: botQueueName(randomUUID()) },
      { prefix: 'broadcast', task: 'campaigns__dispatch_broadcast', live: broadcastQueueName(randomUUID()) },
    ]
    const cases = []
    for (const k of kinds) {
      const done = [`${k.prefix}:${randomUUID()}`, `${k.prefix}:${randomUUID()}`]
      for (const q of done) {
        const id = await addJob(k.task, q)
        await o`select graphile_worker.complete_jobs(array[${id}]::bigint[])`
      }
      // A job retrying later (its queue unlocked) and a job running now (its queue locked): both queues stay.
      const retrying = `${k.prefix}:${randomUUID()}`
      const retryingJob = await addJob(k.task, retrying, `now() + interval '1 hour'`)
      await o`update graphile_worker._private_jobs set attempts = 1, last_error = 'boom' where id = ${retryingJob}`
      const running = `${k.prefix}:${randomUUID()}`
      const runningJob = await addJob(k.task, running)
      await o`update graphile_worker._private_jobs set locked_at = now(), locked_by = 'worker-elsewhere', attempts = 1 where id = ${runningJob}`
      await o`update graphile_worker._private_job_queues set locked_at = now(), locked_by = 'worker-elsewhere' where queue_name = ${running}`
      const lockedEmpty = `${k.prefix}:${randomUUID()}`
      await o`insert into graphile_worker._private_job_queues (queue_name, locked_at, locked_by) values (${lockedEmpty}, now(), 'worker-elsewhere')`
      // Shared queues of this version, empty, and names that only look alike (not a whole uuid).
      const lookalikes = [`${k.prefix}:${randomUUID().slice(0, 8)}`, `${k.prefix}:${randomUUID()}:x`, `x${k.prefix}:${randomUUID()}`, `${k.prefix}:${randomUUID().toUpperCase()}`]
      await o`insert into graphile_worker._private_job_queues (queue_name) select unnest(${[k.live, ...lookalikes]}::text[]) on conflict do nothing`
      cases.push({ done, kept: [retrying, running, lockedEmpty, k.live, ...lookalikes], runningJob })
    }

    await o`select graphile_worker.add_job('whatsapp__gc_send_queues', '{}'::json)`
    await drainJobs(db.current)

    const left = await queues()
    for (const c of cases) {
      for (const q of c.done) expect(left).not.toContain(q)
      expect(left).toEqual(expect.arrayContaining(c.kept))
    }
    // The running jobs finish: their queues go on the next run, the rest stays.
    for (const c of cases) await o`delete from graphile_worker._private_jobs where id = ${c.runningJob}`
    await o`update graphile_worker._private_job_queues set locked_at = null, locked_by = null where locked_by = 'worker-elsewhere'`
    await o`select graphile_worker.add_job('whatsapp__gc_send_queues', '{}'::json)`
    await drainJobs(db.current)
    const after = await queues()
    for (const c of cases) {
      const [retrying, running, lockedEmpty, ...others] = c.kept
      expect(after).not.toContain(running)
      expect(after).not.toContain(lockedEmpty)
      expect(after).toEqual(expect.arrayContaining([retrying, ...others]))
    }
  })

  it('lets bot and broadcast sweeps at once share the rows too', async () => {
    const o = db.current.owner
    for (const del of [deleteLegacyBotQueues, deleteLegacyBroadcastQueues]) while ((await del(db.current.sql, 100)) > 0);
    const bots = Array.from({ length: 30 }, () => `bot:${randomUUID()}`)
    const broadcasts = Array.from({ length: 30 }, () => `broadcast:${randomUUID()}`)
    await o`insert into graphile_worker._private_job_queues (queue_name) select unnest(${[...bots, ...broadcasts]}::text[])`
    const counts = await Promise.all([
      deleteLegacyBotQueues(db.current.sql, 7), deleteLegacyBotQueues(db.current.sql, 7), deleteLegacyBotQueues(db.current.sql, 100),
      deleteLegacyBroadcastQueues(db.current.sql, 7), deleteLegacyBroadcastQueues(db.current.sql, 100),
    ])
    expect(counts.slice(0, 3).reduce((a, b) => a + b, 0)).toBe(30)
    expect(counts.slice(3).reduce((a, b) => a + b, 0)).toBe(30)
    expect((await o`select count(*)::int as n from graphile_worker._private_job_queues where queue_name = any(${[...bots, ...broadcasts]}::text[])`)[0]!.n).toBe(0)
  })

  it('lets sweeps at once share the rows instead of waiting on each other or deleting a queue twice', async () => {
    const o = db.current.owner
    while ((await deleteLegacySendQueues(db.current.sql, 100)) > 0);
    const names = Array.from({ length: 40 }, legacyQueue)
    await o`insert into graphile_worker._private_job_queues (queue_name) select unnest(${names}::text[])`
    const counts = await Promise.all([deleteLegacySendQueues(db.current.sql, 7), deleteLegacySendQueues(db.current.sql, 7), deleteLegacySendQueues(db.current.sql, 100)])
    expect(counts.reduce((a, b) => a + b, 0)).toBe(40)
    expect((await o`select count(*)::int as n from graphile_worker._private_job_queues where queue_name = any(${names}::text[])`)[0]!.n).toBe(0)
  })

  it('schedules one sweep a few minutes after a worker starts, however many start', async () => {
    const deps = { config: testConfig(), sql: db.current.sql, log: testLogger() }
    await armSelfSchedulingJobs(deps)
    await armSelfSchedulingJobs(deps)
    const jobs = await db.current.owner<{ delay: number }[]>`
      select extract(epoch from run_at - now())::float8 as delay from graphile_worker.jobs where task_identifier = 'whatsapp__gc_send_queues'`
    expect(jobs).toHaveLength(1)
    expect(jobs[0]!.delay).toBeGreaterThan(LEGACY_SEND_QUEUE_SWEEP_DELAY_SECONDS - 30)
    expect(jobs[0]!.delay).toBeLessThanOrEqual(LEGACY_SEND_QUEUE_SWEEP_DELAY_SECONDS)
  })

  // Why the sweep does not call graphile-worker's cleanup: should this start failing after an upgrade (graphile locking
  // the queue row in add_jobs, say), GC_JOB_QUEUES may be safe to run on live queues and could replace the sweep.
  it("(graphile-worker 0.16) GC_JOB_QUEUES deletes a live queue under a job being added, and that job never runs", async () => {
    const o = db.current.owner
    const live = 'wa-send:9'
    await o`insert into graphile_worker._private_job_queues (queue_name) values (${live})`
    const utils = await makeWorkerUtils({ connectionString: db.current.ownerUrl })
    try {
      let jobId = ''
      await o.begin(async (tx) => {
        // An enqueue inside a longer transaction (the outbox's is the message's): its job is not visible to the cleanup.
        jobId = (await tx<{ id: string }[]>`select (graphile_worker.add_job('whatsapp__prune_deliveries', '{}'::json, queue_name := ${live})).id::text as id`)[0]!.id
        await utils.cleanup({ tasks: ['GC_JOB_QUEUES'] })
      })
      await drainJobs(db.current)
      const [job] = await o<{ queueGone: boolean }[]>`
        select not exists (select 1 from graphile_worker._private_job_queues q where q.id = j.job_queue_id) as queue_gone
          from graphile_worker._private_jobs j where j.id = ${jobId}`
      expect(job?.queueGone).toBe(true)
    } finally {
      await o`delete from graphile_worker._private_jobs where task_id = (select id from graphile_worker._private_tasks where identifier = 'whatsapp__prune_deliveries')`
      await utils.release()
    }
  })
})
