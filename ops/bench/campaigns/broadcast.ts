/**
 * The broadcast bench (issue 13): a broadcast to N recipients (10,000 for the full run) on the Cloud API emulator at a
 * per-number limit of 80/s, with the worker as its own process, killed with SIGKILL part-way and restarted.
 *
 * Measured, in the same run:
 * - baseline: the bare outbox (B template messages queued directly, as `bench:send` does) through the same worker
 *   at the same limit: the rate the send governor reaches without the broadcast dispatcher in front of it;
 * - the broadcast's achieved rate before the kill (target ≥ 0.95 × the limit) and its ratio to the baseline;
 * - 130429 / 131056 answers from the emulator (which enforces the same limit and a pair rate), target 0;
 * - duplicates (messages to a recipient beyond the first, from the emulator's log) and missed recipients, target 0;
 * - time to resume after `kill -9`: from the kill to the next message the emulator receives (the new process waits
 *   WORKER_HEARTBEAT_TIMEOUT_MS for the dead one's jobs); and how long until every in-flight send of the dead worker
 *   is resolved (its status webhooks prove it went out: not sent again).
 *
 * The emulator posts only `sent` statuses (what the in-doubt check needs), so the 2-core machine spends its time on
 * sending. Loopback only; bounded by BENCH_BROADCAST_DEADLINE_S.
 */
import { readFileSync } from 'node:fs'
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { SecretBox } from '../../../lib/crypto.js'
import { withTenant } from '../../../lib/db.js'
import { parseConfig } from '../../../lib/config.js'
import { createLogger } from '../../../lib/logger.js'
import { readMigrationFiles } from '../../../lib/migrate.js'
import { createBroadcast, startBroadcast } from '../../../domains/campaigns/broadcasts/service.js'
import { createTenantWithFirstKey } from '../../../domains/tenancy/service.js'
import { registerPhoneNumber } from '../../../domains/whatsapp/numbers.js'
import { templateBody } from '../../../domains/whatsapp/graph/bodies.js'
import { queueOutbound } from '../../../domains/whatsapp/outbound/service.js'
import { buildWebhooksApp } from '../../../services/webhooks/app.js'
import { startWhatsAppEmulator } from '../../emulators/whatsapp-cloud-api.js'
import { startBenchDatabase } from '../harness.js'

/** A process's CPU time (user + system) in ms, from /proc (Linux; null elsewhere or once it is gone). */
function workerCpuMs(pid: number | undefined): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
  } catch {
    return null
  }
}
const workerRssMb = (pid: number | undefined): number | null => {
  try {
    return Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024)
  } catch {
    return null
  }
}

export interface BroadcastBenchOptions {
  recipients: number
  baseline: number
  limit: number
  /** The product's send governor (WHATSAPP_SEND_RATE_PER_SECOND); a little under Meta's limit absorbs arrival jitter. */
  governorRate: number
  concurrency: number
  heartbeatTimeoutMs: number
  /** Kill the worker when this share of the recipients has been sent. */
  killAt: number
  deadlineS: number
}

export interface BroadcastBenchResult {
  rows: string[][]
  header: string[]
  ok: boolean
  summary: Record<string, number | string>
}

const ROOT = fileURLToPath(new URL('../../..', import.meta.url))
const RUNTIME_PASSWORD = 'bench_runtime_password'

export function optionsFromEnv(env = process.env): BroadcastBenchOptions {
  return {
    recipients: Math.min(100_000, Number(env.BENCH_BROADCAST_RECIPIENTS ?? 2_000)),
    baseline: Math.min(5_000, Number(env.BENCH_BROADCAST_BASELINE ?? 800)),
    limit: Number(env.BENCH_BROADCAST_LIMIT ?? 80),
    governorRate: Number(env.BENCH_BROADCAST_GOVERNOR_RATE ?? env.BENCH_BROADCAST_LIMIT ?? 80),
    concurrency: Number(env.WORKER_CONCURRENCY ?? 16),
    heartbeatTimeoutMs: Number(env.BENCH_BROADCAST_HEARTBEAT_MS ?? 10_000),
    killAt: Number(env.BENCH_BROADCAST_KILL_AT ?? 0.4),
    deadlineS: Number(env.BENCH_BROADCAST_DEADLINE_S ?? 600),
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Achieved rate over [from, to) of sorted receive times: messages / span between first and last. */
function rateOf(times: number[]): number {
  if (times.length < 2) return 0
  return (times.length - 1) / ((times.at(-1)! - times[0]!) / 1000)
}

export async function runBroadcastBench(o: BroadcastBenchOptions): Promise<BroadcastBenchResult> {
  const log = createLogger({ level: 'warn', service: 'bench' })
  const db = await startBenchDatabase({ poolMax: 10 })
  const secrets = SecretBox.fromConfig(undefined)
  const workers: ChildProcess[] = []
  let killing = false
  let finished = false
  let unplannedExits = 0
  const config = parseConfig({ NODE_ENV: 'development', LOG_LEVEL: 'warn', AUTO_SEED: 'false' })
  const webhooks = await buildWebhooksApp({ config, sql: db.sql, log, migrations: await readMigrationFiles() })
  const webhooksUrl = await webhooks.listen({ host: '127.0.0.1', port: 0 })
  try {
    const { tenant } = await createTenantWithFirstKey(db.sql, { name: 'Bench broadcast', slug: `bench-broadcast-${Date.now() % 1e6}`, defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'bench' })
    const wabaId = '900800700600500'
    const number = await registerPhoneNumber(db.sql, secrets, tenant.id, 'bench', {
      phoneNumberId: '100200300400500', wabaId, displayPhoneNumber: '+1 555 000 0000', accessToken: 'EAAG-bench-token-0000000000', app: { mode: 'platform' },
    })
    const wa = await startWhatsAppEmulator({
      webhookUrl: `${webhooksUrl}/webhooks/whatsapp`, appSecret: config.META_APP_SECRET!, statusDelayMs: 20, statusKinds: ['sent'], wabaId, displayPhoneNumber: '15550000000',
    })
    wa.setRateLimit(o.limit)
    // Meta's pair rate, roughly (a burst, then one per 6 s): a broadcast sends one message per person, so it never binds.
    wa.setPairRateLimit(20)

    // The number's messaging limit (as Meta's phone_number_quality_update leaves it): room for the whole run.
    await db.owner`update whatsapp.phone_numbers set messaging_limit = 'TIER_100K' where id = ${number.id}`
    const total = o.recipients + o.baseline
    await withTenant(db.sql, tenant.id, async (tx) => {
      await tx`
        insert into whatsapp.templates (tenant_id, business_account_id, meta_template_id, name, language, category, status, components)
        select ${tenant.id}, business_account_id, '1234567890', 'december_offer', 'pt_BR', 'MARKETING', 'APPROVED',
               ${tx.json([{ type: 'BODY', text: 'Oi {{1}}, a oferta de {{2}} chegou!' }])}
          from whatsapp.phone_numbers where id = ${number.id}`
      await tx`
        insert into marketing.leads (tenant_id, phone_e164, phone_key, wa_id, name, source, tags, fields)
        select ${tenant.id}, '+55119' || lpad(g::text, 8, '0'), '+55119' || lpad(g::text, 8, '0'), '55119' || lpad(g::text, 8, '0'),
               'Lead ' || g, 'bench', case when g <= ${o.recipients} then '{broadcast}'::text[] else '{baseline}'::text[] end,
               jsonb_build_object('city', case when g % 3 = 0 then 'Recife' else 'Olinda' end)
          from generate_series(1, ${total}) g`
    })

    const startWorker = () => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'services/workers/main.ts'], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'development', DATABASE_URL: db.ownerUrl, DATABASE_RUNTIME_PASSWORD: RUNTIME_PASSWORD,
          AUTO_SEED: 'false', LOG_LEVEL: 'error', GRAPH_API_BASE_URL: wa.url, WHATSAPP_SEND_RATE_PER_SECOND: String(o.governorRate),
          WORKER_CONCURRENCY: String(o.concurrency), WORKER_POLL_INTERVAL_MS: '200', WORKER_HEARTBEAT_TIMEOUT_MS: String(o.heartbeatTimeoutMs), METRICS_PORT: '0',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      })
      workers.push(child)
      // A supervisor restarts a worker that died by itself (counted: the bench's kill is the only one planned).
      child.once('exit', () => {
        if (!killing && !finished) {
          unplannedExits++
          worker = startWorker()
        }
      })
      return child
    }

    const deadline = Date.now() + o.deadlineS * 1000
    const waitUntil = async (check: () => boolean | Promise<boolean>, what: string) => {
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`bench deadline passed waiting for ${what}`)
        await sleep(50)
      }
    }
    let worker = startWorker()

    // 1. Baseline: the bare outbox at the same limit.
    await withTenant(db.sql, tenant.id, async (tx) => {
      const leads = await tx<{ id: string; waId: string }[]>`select id, wa_id from marketing.leads where tags = '{baseline}' order by id`
      for (const l of leads) {
        const body = templateBody({ to: l.waId, name: 'december_offer', language: 'pt_BR', components: [{ type: 'body', parameters: [{ type: 'text', text: 'Lead' }, { type: 'text', text: 'Recife' }] }] })
        await queueOutbound(tx, { tenantId: tenant.id, phoneId: number.id, leadId: l.id, waId: l.waId, body, source: 'api', requestedBy: 'bench' })
      }
    })
    await waitUntil(() => wa.sent.length >= o.baseline, 'the baseline sends')
    const baselineRate = rateOf(wa.sent.map((m) => Date.parse(m.receivedAt)).sort((a, b) => a - b).slice(Math.floor(o.baseline * 0.05)))
    const baselineThrottled = { ...wa.throttled }
    wa.reset()
    wa.setRateLimit(o.limit)
    wa.setPairRateLimit(20)

    // 2. The broadcast, through the domain (what POST /v1/broadcasts and /start do).
    const who = { tenantId: tenant.id, actor: 'bench' }
    const b = await createBroadcast(db.sql, who, {
      name: 'Bench', template: { name: 'december_offer', language: 'pt_BR' },
      parameters: { body: [{ field: 'first_name', fallback: 'cliente' }, { field: 'fields.city' }], buttons: [] },
      audience: { type: 'filter', filter: { tags: ['broadcast'], tagMatch: 'all' } },
    })
    const startedAt = Date.now()
    // Where the database's time goes while the broadcast runs: active backends' wait events and statements, sampled.
    const waits = new Map<string, number>()
    let sampling = true
    let lastReport: { at: number; sent: number; cpu: number | null } = { at: Date.now(), sent: wa.sent.length, cpu: null }
    const sampler = (async () => {
      while (sampling) {
        if (process.env.BENCH_BROADCAST_DIAG && Date.now() - lastReport.at >= 10_000) {
          const now = { at: Date.now(), sent: wa.sent.length }
          // The worker's own CPU share and memory over the window, and the dead rows of the tables every send touches.
          const cpu = workerCpuMs(worker.pid)
          const share = cpu !== null && lastReport.cpu !== null ? `${((100 * (cpu - lastReport.cpu)) / (now.at - lastReport.at)).toFixed(0)}%` : '-'
          const dead = await db.owner<{ t: string }[]>`
            select string_agg(relname || ' ' || n_dead_tup || '/' || n_live_tup, ', ' order by relname) as t from pg_stat_all_tables
             where (schemaname, relname) in (('graphile_worker', '_private_jobs'), ('graphile_worker', '_private_job_queues'), ('whatsapp', 'outbound_sends'),
                                             ('whatsapp', 'send_slots'), ('campaigns', 'broadcast_recipients'), ('whatsapp', 'messages'))`.catch(() => [])
          console.log(`+${((now.at - startedAt) / 1000).toFixed(0)} s: ${now.sent} sent, ${((now.sent - lastReport.sent) / ((now.at - lastReport.at) / 1000)).toFixed(1)}/s over the last ${((now.at - lastReport.at) / 1000).toFixed(0)} s, 130429 so far ${wa.throttled[130429] ?? 0}; worker CPU ${share}, RSS ${workerRssMb(worker.pid) ?? '-'} MB; dead/live ${dead[0]?.t ?? '-'}`)
          lastReport = { ...now, cpu }
        }
        const rows = await db.owner<{ w: string }[]>`
          select coalesce(wait_event_type || ':' || wait_event, 'cpu') || ' | ' || left(regexp_replace(query, '[[:space:]]+', ' ', 'g'), 90) as w
            from pg_stat_activity where state = 'active' and pid <> pg_backend_pid() and datname = current_database()`.catch(() => [])
        for (const r of rows) waits.set(r.w, (waits.get(r.w) ?? 0) + 1)
        await sleep(100)
      }
    })()
    await startBroadcast(db.sql, who, b.id)
    const materialisedMs = Date.now() - startedAt

    // 3. kill -9 part-way, restart at once (as a supervisor would).
    await waitUntil(() => wa.sent.length >= Math.floor(o.recipients * o.killAt), 'the kill point')
    const beforeKill = wa.sent.map((m) => Date.parse(m.receivedAt))
    killing = true
    const exited = new Promise((r) => worker.once('exit', r))
    worker.kill('SIGKILL')
    const killedAt = Date.now()
    const sentAtKill = wa.sent.length
    await exited
    killing = false
    worker = startWorker()
    // Calls the dead worker had already sent may still reach the emulator just after the kill: resuming is the first
    // message that arrives after the new process started.
    const restartedAt = Date.now()
    const firstAfterRestart = () => wa.sent.slice(sentAtKill).find((m) => Date.parse(m.receivedAt) >= restartedAt)
    await waitUntil(() => firstAfterRestart() !== undefined, 'the first send after the restart')
    const resumeMs = Date.parse(firstAfterRestart()!.receivedAt) - killedAt

    // 4. Until the broadcast completes (the dead worker's in-flight sends are resolved from their status webhooks).
    const status = async () => (await db.owner<{ status: string }[]>`select status from campaigns.broadcasts where id = ${b.id}`)[0]!.status
    await waitUntil(async () => (await status()) !== 'sending', 'the broadcast to finish')
    const finishedAt = Date.now()
    finished = true
    sampling = false
    await sampler
    if (process.env.BENCH_BROADCAST_DIAG) {
      console.log('wait samples (100 ms), top 25:')
      for (const [k, v] of [...waits].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(String(v).padStart(6), k)
    }
    // Sends the dead worker had claimed: one whose call never began (asleep for its rate slot) is claimed again and
    // sent as soon as the restarted worker runs its job; one whose call had begun is resolved from its status webhook
    // (after the in-flight lease, or sooner once the dead worker's heartbeat is stale), or sent again only if Meta
    // never had it. Any call made twice shows up as a duplicate at the emulator.
    const [settle] = await db.owner<{ lastAccepted: Date; inDoubt: number; resent: number }[]>`
      select max(s.accepted_at) as last_accepted,
             count(*) filter (where s.call_started_at < ${new Date(killedAt)} and s.accepted_at > ${new Date(killedAt + 10_000)})::int as in_doubt,
             count(*) filter (where s.attempts > 1)::int as resent
        from campaigns.broadcast_recipients r join whatsapp.outbound_sends s on s.message_id = r.message_id where r.broadcast_id = ${b.id}`

    // Sends that waited out the in-doubt grace (accepted long after the kill): their call had been marked begun (0064)
    // and no status came. Their first claim's times are gone (the claim after the grace overwrote them).
    const [graced] = await db.owner<{ n: number }[]>`
      select count(*)::int as n
        from campaigns.broadcast_recipients r join whatsapp.outbound_sends s on s.message_id = r.message_id
       where r.broadcast_id = ${b.id} and s.accepted_at > ${new Date(killedAt + 120_000)}`
    if (graced!.n > 0) console.log(`sends that waited the grace: ${graced!.n}`)
    const sent = wa.sent
    const distinct = new Set(sent.map((m) => m.waId)).size
    const [counts] = await db.owner<{ recipients: number; sent: number; failed: number; pending: number }[]>`
      select count(*)::int as recipients, count(*) filter (where state = 'sent')::int as sent, count(*) filter (where state = 'failed')::int as failed,
             count(*) filter (where state in ('pending', 'queued'))::int as pending
        from campaigns.broadcast_recipients where broadcast_id = ${b.id}`
    const steadyRate = rateOf(beforeKill.sort((a, b) => a - b).slice(Math.floor(beforeKill.length * 0.05)))
    if (process.env.BENCH_BROADCAST_DIAG) {
      const step = Math.max(2, Math.floor(beforeKill.length / 8))
      const parts: string[] = []
      for (let i = 0; i + step <= beforeKill.length; i += step) parts.push(rateOf(beforeKill.slice(i, i + step)).toFixed(1))
      console.log(`rate per eighth before the kill: ${parts.join(', ')}`)
    }
    const times = sent.map((m) => Date.parse(m.receivedAt)).sort((a, b) => a - b)
    const overallRate = rateOf(times)
    const throttled = (wa.throttled[130429] ?? 0) + (wa.throttled[131056] ?? 0)
    const duplicates = sent.length - distinct
    const missed = o.recipients - distinct
    const finalStatus = await status()
    await wa.stop()

    const ok = steadyRate >= 0.95 * o.limit && throttled === 0 && duplicates === 0 && missed === 0 && finalStatus === 'completed'
    const header = ['run', 'messages', 'achieved/s', 'vs limit', 'vs baseline', '130429', '131056', 'duplicates', 'missed', 'note']
    const rows = [
      ['bare outbox (baseline)', String(o.baseline), baselineRate.toFixed(1), (baselineRate / o.limit).toFixed(3), '1.000', String(baselineThrottled[130429] ?? 0), String(baselineThrottled[131056] ?? 0), '-', '-', 'queued in one transaction'],
      ['broadcast, before kill -9', String(beforeKill.length), steadyRate.toFixed(1), (steadyRate / o.limit).toFixed(3), (steadyRate / baselineRate).toFixed(3), '-', '-', '-', '-', `audience snapshot ${materialisedMs} ms`],
      ['broadcast, whole run', String(sent.length), overallRate.toFixed(1), (overallRate / o.limit).toFixed(3), (overallRate / baselineRate).toFixed(3), String(wa.throttled[130429] ?? 0), String(wa.throttled[131056] ?? 0), String(duplicates), String(missed), `status ${finalStatus}; ${counts!.sent} sent, ${counts!.failed} failed`],
    ]
    return {
      header, rows, ok,
      summary: {
        resumeAfterKillMs: resumeMs, heartbeatTimeoutMs: o.heartbeatTimeoutMs, inFlightAtKillResolvedFromStatuses: settle!.inDoubt,
        // Claimed more than once (a retry after an error, or a claim taken over); the calls made twice are `duplicates`.
        claimedAgain: settle!.resent,
        lastAcceptedAfterKillS: settle!.lastAccepted ? ((settle!.lastAccepted.getTime() - killedAt) / 1000).toFixed(1) : '-',
        totalS: ((finishedAt - startedAt) / 1000).toFixed(1), pending: counts!.pending, unplannedWorkerExits: unplannedExits,
      },
    }
  } finally {
    finished = true
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL')
    await webhooks.close()
    await db.close()
  }
}

/** The part as `npm run bench:campaigns` finds it. It starts its own database and worker process (it kills one). */
export default {
  name: 'broadcast-send',
  title: 'Broadcast: recipients at the 80/s limit on the emulator, the worker killed with SIGKILL mid-way and restarted',
  run: async () => {
    const r = await runBroadcastBench(optionsFromEnv())
    console.log([r.header, ...r.rows].map((row) => row.join(' | ')).join('\n'))
    return { passed: r.ok, summary: [Object.entries(r.summary).map(([k, v]) => `${k}: ${v}`).join('; ')] }
  },
}
