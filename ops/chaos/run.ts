/**
 * `npm run chaos`: the fault drill. Starts its own PostgreSQL (embedded, in a temp folder), migrates it, creates
 * tenants with a WhatsApp number and a public form, and runs the webhooks service and the worker as separate
 * processes (as production does). Then, one fault after the other, it posts signed WhatsApp deliveries and form
 * submissions at a bounded rate while it
 *   (a) kills the worker with SIGKILL and starts it again,
 *   (b) stops PostgreSQL and starts it again (same port, same data),
 *   (c) mixes poisoned items (NUL, lone surrogate, malformed bodies) into the good ones;
 * waits (bounded) for processing to settle, and prints per fault and channel: sent, acknowledged, stored,
 * processed, lost, duplicated. Exits 1 unless every acknowledged item was applied exactly once, no process crashed
 * on its own, and poisoned items failed no neighbour; 2 when the drill itself could not run. Loopback only.
 * Knobs: ops/chaos/settings.ts (CHAOS_*). Every other variable passes through to the children (e.g. the worker's
 * heartbeat settings), except those the drill must own (database, ports, secret). See ops/chaos/README.md.
 */
import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import postgres from 'postgres'
import { deriveRuntimeUrl, DEFAULT_RUNTIME_USER, ensureDatabaseExists } from '../../lib/database.js'
import { createSql } from '../../lib/db.js'
import { startEmbeddedPostgres, type EmbeddedServer } from '../../lib/embedded-postgres.js'
import { migrate } from '../../lib/migrate.js'
import { SecretBox } from '../../lib/crypto.js'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { registerPhoneNumber } from '../../domains/whatsapp/numbers.js'
import { createForm } from '../../domains/marketing/forms/service.js'
import { FormDefinition } from '../../domains/marketing/forms/schemas.js'
import { startWhatsAppEmulator } from '../emulators/whatsapp-cloud-api.js'
import { freePort } from '../../test/free-port.js'
import { Child, readyz, sleep } from './children.js'
import { CHANNELS, formatPoison, formatTallies, judge, tally, type Observed, type PhaseReport } from './ledger.js'
import { faultsOf, parseChaosSettings, type ChaosSettings } from './settings.js'
import { ItemFactory, Traffic, type ChaosTenant } from './traffic.js'

const APP_SECRET = 'chaos-meta-app-secret'
const RUNTIME_PASSWORD = 'chaos_runtime_password'
const TITLES = { a: 'kill -9 the worker, then start it again', b: 'stop PostgreSQL, then start it again', c: 'poisoned items among good ones' } as const

let settings: ChaosSettings
try {
  settings = parseChaosSettings(process.env)
} catch (err) {
  console.error((err as Error).message)
  process.exit(2)
}
const s = settings
const t0 = Date.now()
const clock = () => Date.now() - t0
const say = (line: string) => console.log(`[chaos +${(clock() / 1000).toFixed(1)}s] ${line}`)
const runId = randomBytes(3).toString('hex')

const dir = await mkdtemp(path.join(tmpdir(), 'wa-chaos-'))
// As root the embedded server runs as the `postgres` user, who must reach the data folder.
await chmod(dir, 0o755)
const dataDir = path.join(dir, 'data')
const pgPort = await freePort()
const webhooksPort = await freePort()
const webhooksUrl = `http://127.0.0.1:${webhooksPort}`
let pg: EmbeddedServer | null = null
let emulator: Awaited<ReturnType<typeof startWhatsAppEmulator>> | null = null
const children: Child[] = []
let exitCode = 2

const startDatabase = async () => { pg = await startEmbeddedPostgres({ dir: dataDir, port: pgPort, persistent: true }) }
const ownerUrl = `postgres://postgres:postgres@127.0.0.1:${pgPort}/wa_chaos`

/** A short-lived owner connection per look: nothing of ours is connected when the database goes away. */
async function withOwner<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(ownerUrl, { max: 1, connect_timeout: 3, onnotice: () => {} })
  try {
    return await fn(sql)
  } finally {
    await sql.end({ timeout: 1 })
  }
}

process.on('unhandledRejection', (err) => { console.error('chaos: unhandled rejection in the drill itself:', err) })

try {
  say(`run ${runId}: PostgreSQL on 127.0.0.1:${pgPort} (data in ${dataDir}), webhooks on ${webhooksUrl}`)
  await startDatabase()
  await ensureDatabaseExists(pg!.url('postgres'), 'wa_chaos')
  await migrate(ownerUrl, { runtimeRole: { user: DEFAULT_RUNTIME_USER, password: RUNTIME_PASSWORD } })
  const tenants = await createTenants(deriveRuntimeUrl(ownerUrl, DEFAULT_RUNTIME_USER, RUNTIME_PASSWORD), s.CHAOS_TENANTS)
  // Sends (a bot reply, were one configured) land on loopback, never at Meta.
  emulator = await startWhatsAppEmulator({ port: 0 })

  // The parent's environment passes through (heartbeat and unlock settings, pool sizes…); the drill owns the rest.
  const childEnv = (logLevel: string) => () => ({
    WORKER_POLL_INTERVAL_MS: '100',
    FORM_RATE_LIMIT_PER_IP_PER_MINUTE: '1000000',
    FORM_RATE_LIMIT_PER_FORM_PER_MINUTE: '1000000',
    ...Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined)),
    NODE_ENV: 'development',
    LOG_LEVEL: logLevel,
    DATABASE_URL: ownerUrl,
    DATABASE_RUNTIME_URL: '',
    DATABASE_RUNTIME_PASSWORD: RUNTIME_PASSWORD,
    AUTO_MIGRATE: 'false',
    AUTO_SEED: 'false',
    HOST: '127.0.0.1',
    WEBHOOKS_PORT: String(webhooksPort),
    GRAPH_API_BASE_URL: emulator!.url,
    META_APP_SECRET: APP_SECRET,
    REDIS_URL: '',
  })
  const webhooks = new Child('webhooks', 'services/webhooks/main.ts', childEnv(s.CHAOS_CHILD_LOG_LEVEL), path.join(dir, 'webhooks.log'), clock)
  // The worker logs at info at least: its "worker running" line is how we know it is up.
  const workerLevel = ['debug', 'trace'].includes(s.CHAOS_CHILD_LOG_LEVEL) ? s.CHAOS_CHILD_LOG_LEVEL : 'info'
  const worker = new Child('worker', 'services/workers/main.ts', childEnv(workerLevel), path.join(dir, 'worker.log'), clock)
  children.push(webhooks, worker)
  const startWebhooks = () => webhooks.start(readyz(webhooksUrl), s.CHAOS_START_TIMEOUT_MS)
  const startWorker = () => worker.start(async (c) => c.printed('worker running'), s.CHAOS_START_TIMEOUT_MS)
  await Promise.all([startWebhooks(), startWorker()])
  say(`webhooks pid ${webhooks.pid} and worker pid ${worker.pid} are up; ${tenants.length} tenants`)

  const reports: PhaseReport[] = []
  for (const fault of faultsOf(s)) {
    const later = faultsOf(s).length - reports.length - 1
    reports.push(await runPhase(fault, tenants, { webhooks, worker, startWebhooks, startWorker }, later))
  }

  console.log('\n==== summary ====')
  for (const r of reports) {
    const reasons = judge(r)
    const cells = r.tallies.map((t) => `${t.channel} ${t.acknowledged} acked / ${t.processed} processed / ${t.lost} lost / ${t.duplicated} doubled`)
    console.log(`(${r.fault}) ${reasons.length ? 'FAIL' : 'PASS'}  ${r.title}: ${cells.join('; ')}`)
  }
  const failed = reports.filter((r) => judge(r).length > 0)
  exitCode = failed.length ? 1 : 0
  console.log(failed.length ? `\n${failed.length} of ${reports.length} fault(s) failed; child logs: ${dir}/*.log` : `\nall ${reports.length} fault(s) passed: 0 lost, 0 doubled`)
} catch (err) {
  console.error(`\nchaos: the drill itself failed: ${(err as Error)?.stack ?? err}`)
  console.error(`child logs: ${dir}/*.log`)
  exitCode = 2
} finally {
  await Promise.all(children.map((c) => c.kill('SIGTERM', 10_000)))
  await Promise.all(children.map((c) => c.close()))
  await emulator?.stop().catch(() => {})
  await Promise.race([(pg as EmbeddedServer | null)?.stop(), sleep(15_000)]).catch(() => {})
  // Keep the logs of a failed run; the database goes either way unless CHAOS_KEEP says otherwise.
  if (s.CHAOS_KEEP) say(`kept ${dir}`)
  else await rm(exitCode === 0 ? dir : dataDir, { recursive: true, force: true })
  say(`done in ${(clock() / 1000).toFixed(1)} s`)
  process.exit(exitCode)
}

interface Procs {
  webhooks: Child
  worker: Child
  startWebhooks: () => Promise<void>
  startWorker: () => Promise<void>
}

async function runPhase(fault: 'a' | 'b' | 'c', tenants: ChaosTenant[], procs: Procs, phasesAfter: number): Promise<PhaseReport> {
  const { webhooks, worker } = procs
  console.log(`\n==== fault (${fault}): ${TITLES[fault]} ====`)
  const notes: string[] = []
  const note = (line: string) => { notes.push(line); say(line) }
  const exitsBefore = new Map([webhooks, worker].map((c) => [c, c.exits.length]))
  const startsBefore = new Map([webhooks, worker].map((c) => [c, c.starts]))

  // A child that a previous fault left dead gets another chance, so this fault is judged on its own.
  await reviveCrashed(procs, note)

  const traffic = new Traffic(webhooksUrl, new ItemFactory(runId, fault, tenants, APP_SECRET), {
    whatsappRate: s.CHAOS_WHATSAPP_RATE, formRate: s.CHAOS_FORM_RATE, burst: s.CHAOS_BURST, poisonEvery: s.CHAOS_POISON_EVERY, requestTimeoutMs: s.CHAOS_REQUEST_TIMEOUT_MS,
  })
  traffic.poisoned = fault === 'c'
  traffic.start()
  await sleep(s.CHAOS_LEAD_IN_MS)
  // The recovery clock starts with the fault: "recovered within a minute of the worker's death".
  const faultAt = Date.now()

  if (fault === 'a') {
    // Aim for the middle of a batch: wait (briefly) until the worker holds a job, then kill it.
    const deadline = Date.now() + 3000
    while (Date.now() < deadline && (await lockedJobs()) === 0) await sleep(10)
    const pid = worker.pid
    await worker.kill('SIGKILL')
    note(`killed the worker (pid ${pid}) with SIGKILL; ${await lockedJobs()} job(s) left locked by it`)
    await sleep(s.CHAOS_FAULT_MS)
    const started = Date.now()
    await procs.startWorker().then(
      () => note(`worker started again (pid ${worker.pid}) in ${((Date.now() - started) / 1000).toFixed(1)} s`),
      (err) => note(`the worker could not be started again: ${firstLine(err)}`),
    )
  } else if (fault === 'b') {
    const server = pg!
    pg = null
    await Promise.race([server.stop(), sleep(15_000).then(() => { throw new Error('PostgreSQL did not stop within 15 s') })])
    note('stopped PostgreSQL (fast shutdown: sessions terminated)')
    await sleep(Math.floor(s.CHAOS_FAULT_MS / 2))
    note(`half-way through the outage: webhooks ${await probeHealth()}`)
    await sleep(Math.ceil(s.CHAOS_FAULT_MS / 2))
    note(`at the end of the outage: webhooks ${webhooks.alive ? 'alive' : 'DEAD'}, worker ${worker.alive ? 'alive' : 'DEAD'}`)
    await startDatabase()
    note(`started PostgreSQL again on the same port and data`)
  } else {
    await sleep(s.CHAOS_FAULT_MS)
  }

  await sleep(s.CHAOS_TAIL_MS)
  await traffic.stop()
  await reviveCrashed(procs, note)

  // Settle: every acknowledged item applied, or the recovery timeout.
  const settleStart = Date.now()
  // Within the run's budget, keeping room for the phases still to come (their traffic and a short wait).
  const budgetEnd = t0 + s.CHAOS_MAX_RUN_MS - phasesAfter * (s.CHAOS_LEAD_IN_MS + s.CHAOS_FAULT_MS + s.CHAOS_TAIL_MS + 10_000)
  const deadline = Math.min(faultAt + s.CHAOS_RECOVERY_TIMEOUT_MS, budgetEnd)
  if (deadline < faultAt + s.CHAOS_RECOVERY_TIMEOUT_MS) note(`recovery wait cut to ${((deadline - faultAt) / 1000).toFixed(1)} s after the fault by CHAOS_MAX_RUN_MS=${s.CHAOS_MAX_RUN_MS}`)
  let observed = await observe(fault)
  let settled = false
  while (true) {
    const tallies = CHANNELS.map((c) => tally(c, traffic.outcomes, observed))
    if (tallies.every((t) => t.lost === 0)) { settled = true; break }
    if (!worker.alive) { note('the worker is not running: not waiting for processing'); break }
    if (Date.now() > deadline) break
    await sleep(500)
    observed = await observe(fault)
  }
  const settleMs = Date.now() - settleStart
  const sinceFault = ((Date.now() - faultAt) / 1000).toFixed(1)
  if (settled) {
    // A late redo (a job run twice) would show up now as a double.
    await sleep(s.CHAOS_QUIET_MS)
    observed = await observe(fault)
  } else {
    const jobs = await withOwner((sql) => sql<{ locked: number; due: number; later: number }[]>`
      select count(*) filter (where locked_by is not null)::int as locked,
             count(*) filter (where locked_by is null and run_at <= now())::int as due,
             count(*) filter (where locked_by is null and run_at > now())::int as later
        from graphile_worker._private_jobs`.then((r) => r[0]!)).catch(() => null)
    note(`not settled ${sinceFault} s after the fault began (CHAOS_RECOVERY_TIMEOUT_MS=${s.CHAOS_RECOVERY_TIMEOUT_MS}); jobs: ` +
      (jobs ? `${jobs.locked} locked (a dead worker's, unless one is running), ${jobs.due} due, ${jobs.later} scheduled later (retries, cron)` : 'could not be counted'))
  }

  const report: PhaseReport = {
    fault,
    title: TITLES[fault],
    tallies: CHANNELS.map((c) => tally(c, traffic.outcomes, observed)),
    processes: [webhooks, worker].map((c) => ({
      name: c.name,
      crashes: c.exits.slice(exitsBefore.get(c)).filter((e) => !e.intended),
      restarts: c.starts - startsBefore.get(c)!,
    })),
    settled,
    settleMs,
    neighboursMustPass: fault === 'c',
    notes,
  }
  const reasons = judge(report)
  console.log(`\n${formatTallies(report.tallies)}`)
  for (const line of formatPoison(report.tallies)) console.log(line)
  const errors = [...new Set(traffic.outcomes.filter((o) => o.error).map((o) => o.error))]
  if (errors.length) console.log(`requests without an answer: ${errors.join(', ')}`)
  console.log(settled ? `settled: everything acknowledged applied ${sinceFault} s after the fault began (${(settleMs / 1000).toFixed(1)} s after the traffic stopped)` : 'NOT settled within the recovery timeout')
  for (const p of report.processes) {
    for (const c of p.crashes) {
      console.log(`${p.name} CRASHED at +${(c.at / 1000).toFixed(1)} s (code ${c.code}, signal ${c.signal}); its last words:\n${indent(c.lastWords)}`)
    }
  }
  console.log(reasons.length ? `fault (${fault}) FAIL:\n${reasons.map((r) => `  - ${r}`).join('\n')}` : `fault (${fault}) PASS`)
  return report
}

/** Starts again, once the database answers, whichever child is not running (and says so). */
async function reviveCrashed(procs: Procs, note: (line: string) => void) {
  if (!s.CHAOS_RESTART_CRASHED) return
  for (const [child, start] of [[procs.webhooks, procs.startWebhooks], [procs.worker, procs.startWorker]] as const) {
    if (child.alive) continue
    const last = child.exits.at(-1)
    await start().then(
      () => note(`${child.name} was not running (exit code ${last?.code}, signal ${last?.signal}); started it again`),
      (err) => note(`${child.name} was not running and could not be started again: ${firstLine(err)}`),
    )
  }
}

/** What an orchestrator would see: /healthz (alive) and /readyz (can serve), with Retry-After when refused. */
async function probeHealth(): Promise<string> {
  const probe = async (route: string) => {
    try {
      const res = await fetch(`${webhooksUrl}${route}`, { signal: AbortSignal.timeout(2000) })
      const retry = res.headers.get('retry-after')
      return `${route} ${res.status}${retry ? ` (Retry-After ${retry})` : ''}`
    } catch (err) {
      return `${route} no answer (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name})`
    }
  }
  return (await Promise.all([probe('/healthz'), probe('/readyz')])).join(', ')
}

function lockedJobs(): Promise<number> {
  return withOwner((sql) => sql<{ n: number }[]>`select count(*)::int as n from graphile_worker._private_jobs where locked_by is not null`.then((r) => r[0]!.n)).catch(() => -1)
}

/** What the database holds of one phase's items: stored (raw or applied) and how many times each was applied. */
async function observe(fault: string): Promise<Observed> {
  const wamids = `wamid.chaos${runId}x${fault}x%`
  const emails = `p${fault}-%.${runId}@chaos.example`
  try {
    return await withOwner(async (sql) => {
      const [raw, messages, interactions, inbox, submissions, leads] = await Promise.all([
        sql<{ key: string }[]>`
          select key from (select jsonb_path_query(payload, 'lax $.entry[*].changes[*].value.messages[*].id') #>> '{}' as key
                             from whatsapp.webhook_deliveries) d where key like ${wamids}`,
        sql<{ key: string; n: number }[]>`select wamid as key, count(*)::int as n from whatsapp.messages where wamid like ${wamids} group by wamid`,
        sql<{ key: string; n: number }[]>`
          select substr(dedupe_key, 8) as key, count(*)::int as n from marketing.lead_interactions
           where dedupe_key like ${`wa:msg:${wamids}`} group by dedupe_key`,
        sql<{ key: string }[]>`select submission->'lead'->>'email' as key from marketing.form_submission_inbox where submission->'lead'->>'email' like ${emails}`,
        sql<{ key: string; n: number }[]>`select answers->>'email' as key, count(*)::int as n from marketing.form_submissions where answers->>'email' like ${emails} group by 1`,
        sql<{ key: string; n: number }[]>`select email as key, count(*)::int as n from marketing.leads where email like ${emails} group by email`,
      ])
      const applied = new Map<string, number>()
      // An item counts as applied once its primary record exists; any record of it present twice makes it doubled.
      for (const r of [...messages, ...submissions]) applied.set(r.key, Math.max(applied.get(r.key) ?? 0, r.n))
      for (const r of [...interactions, ...leads]) if (applied.has(r.key)) applied.set(r.key, Math.max(applied.get(r.key)!, r.n))
      const stored = new Set([...raw, ...inbox].map((r) => r.key).concat([...applied.keys()]))
      return { stored, applied }
    })
  } catch (err) {
    say(`could not count (${firstLine(err)}); counting nothing this time`)
    return { stored: new Set(), applied: new Map() }
  }
}

async function createTenants(runtimeUrl: string, count: number): Promise<ChaosTenant[]> {
  const sql = createSql(runtimeUrl, { max: 4, quiet: true })
  try {
    const tenants: ChaosTenant[] = []
    for (let i = 0; i < count; i++) {
      const { tenant } = await createTenantWithFirstKey(sql, { name: `Chaos ${i}`, slug: `chaos-${runId}-${i}`, defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'chaos' })
      const number = { phoneNumberId: `1009000000${String(i).padStart(5, '0')}`, wabaId: `9009000000${String(i).padStart(5, '0')}`, displayNumber: `1555090${String(i).padStart(4, '0')}` }
      await registerPhoneNumber(sql, SecretBox.fromConfig(undefined), tenant.id, 'chaos', {
        phoneNumberId: number.phoneNumberId, wabaId: number.wabaId, displayPhoneNumber: `+${number.displayNumber}`, accessToken: 'EAAG-chaos-token-0000000000', app: { mode: 'platform' },
      })
      const form = await createForm(sql, { tenantId: tenant.id, actor: 'chaos', requestId: null }, FormDefinition.parse({
        name: 'Chaos form',
        fields: [
          { name: 'name', label: 'Name', type: 'text', required: true },
          { name: 'email', label: 'Email', type: 'email', required: true },
        ],
      }))
      tenants.push({ id: tenant.id, ...number, formPublicKey: form.publicKey })
    }
    return tenants
  } finally {
    await sql.end({ timeout: 5 })
  }
}

// Declared as functions: the top-level code above runs before any `const` down here would exist.
function firstLine(err: unknown) { return String((err as Error)?.message ?? err).split('\n')[0] }
function indent(text: string) { return text.trimEnd().split('\n').slice(-15).map((l) => `    ${l.slice(0, 300)}`).join('\n') }
