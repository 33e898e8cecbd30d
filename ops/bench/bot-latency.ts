/**
 * `npm run bench:bot`: latency from an inbound message arriving at the webhook to the bot's reply reaching the
 * Cloud API emulator, with C conversations talking at once (target: p99 under 250 ms at 100).
 *
 * The whole path is real and on loopback: a signed POST to the webhooks service (verify, group commit with its
 * job), whatsapp__process_deliveries (lead, message, window, bot event and job in one commit), conversations__run_bot
 * (flow step, reply queued in the outbox), whatsapp__send_message (rules, shared rate slot, Graph call) and the
 * emulator, which also posts the status webhooks back (more load on the same path). Each conversation sends a
 * message, waits for the reply, "reads and types" for a think time (BENCH_THINK_MS, uniform 0.5x-1.5x; 0 makes it a
 * closed-loop saturation test), and sends the next: T turns each, timed from just before the POST to the moment the
 * emulator has the reply.
 *
 * Environment: BENCH_CONVERSATIONS (100), BENCH_TURNS (10), BENCH_THINK_MS (5000: a person reading and typing;
 * 1000 saturates this machine), WORKER_CONCURRENCY (8, the product's default; 16 oversubscribes two cores and
 * stretches the tail),
 * BENCH_DATABASE_URL (else embedded). Loopback only; stops after 120 s.
 */
import { createHmac } from 'node:crypto'
import { run } from 'graphile-worker'
import { SecretBox } from '../../lib/crypto.js'
import { parseConfig } from '../../lib/config.js'
import { createLogger } from '../../lib/logger.js'
import { readMigrationFiles } from '../../lib/migrate.js'
import { createFlow } from '../../domains/conversations/service.js'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { registerPhoneNumber } from '../../domains/whatsapp/numbers.js'
import { startWhatsAppEmulator } from '../emulators/whatsapp-cloud-api.js'
import { buildWebhooksApp } from '../../services/webhooks/app.js'
import { buildTaskList } from '../../services/workers/tasks/index.js'
import { workerLogger } from '../../services/workers/worker.js'
import { startBenchDatabase } from './harness.js'

const CONVERSATIONS = Math.min(500, Number(process.env.BENCH_CONVERSATIONS ?? 100))
const TURNS = Math.min(50, Number(process.env.BENCH_TURNS ?? 10))
const CONCURRENCY = Number(process.env.WORKER_CONCURRENCY ?? 8)
const THINK_MS = Number(process.env.BENCH_THINK_MS ?? 5000)
const DEADLINE_MS = 120_000
const SECRET = 'dev-meta-app-secret'
const PHONE_NUMBER_ID = '100200300499999'
const WABA_ID = '900800700699999'

const log = createLogger({ level: 'warn', service: 'bench' })
const db = await startBenchDatabase({ poolMax: CONCURRENCY + 10 })
const config = parseConfig({ NODE_ENV: 'test', META_APP_SECRET: SECRET })
const secrets = SecretBox.fromConfig(undefined)

const { tenant } = await createTenantWithFirstKey(db.sql, { name: 'Bench bot', slug: `bench-bot-${Date.now() % 1e6}`, defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'bench' })
await registerPhoneNumber(db.sql, secrets, tenant.id, 'bench', { phoneNumberId: PHONE_NUMBER_ID, wabaId: WABA_ID, displayPhoneNumber: '+1 555 000 0000', accessToken: 'EAAG-bench-token-0000000000', app: { mode: 'platform' } })
// One reply per message: an ask that echoes the previous answer and asks again.
await createFlow(db.sql, { tenantId: tenant.id, actor: 'bench' }, {
  publish: true,
  document: {
    name: 'echo', trigger: { type: 'first_message' }, startNodeId: 'ask',
    nodes: [{ type: 'ask', id: 'ask', text: 'got {{answers.n|nothing}}', answerKey: 'n', input: { kind: 'text' }, invalidText: 'again?', next: 'ask' }],
  },
})

const webhooks = await buildWebhooksApp({ config, sql: db.sql, log, migrations: await readMigrationFiles() })
const webhooksUrl = `${await webhooks.listen({ host: '127.0.0.1', port: 0 })}/webhooks/whatsapp`
const wa = await startWhatsAppEmulator({ webhookUrl: webhooksUrl, appSecret: SECRET, wabaId: WABA_ID, statusDelayMs: 50 })
const workerConfig = { ...config, GRAPH_API_BASE_URL: wa.url }
const runner = await run({
  connectionString: db.runtimeUrl, concurrency: CONCURRENCY, maxPoolSize: CONCURRENCY + 2, pollInterval: 1000, noHandleSignals: true,
  taskList: buildTaskList({ config: workerConfig, sql: db.sql, log }), logger: workerLogger(log),
})

// Replies, by recipient, as the emulator records them (scanned incrementally, so checking costs nothing per waiter).
const waiting = new Map<string, () => void>()
let scanned = 0
const scanner = setInterval(() => {
  for (; scanned < wa.sent.length; scanned++) {
    const m = wa.sent[scanned]!
    const wake = waiting.get(m.to)
    if (wake) {
      waiting.delete(m.to)
      wake()
    }
  }
}, 1)

let seq = 0
async function turn(waId: string, text: string): Promise<number> {
  const raw = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: WABA_ID, changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp', metadata: { display_phone_number: '15550000000', phone_number_id: PHONE_NUMBER_ID },
      contacts: [{ profile: { name: `Lead ${waId}` }, wa_id: waId }],
      messages: [{ from: waId, id: `wamid.bench.${++seq}.${Date.now()}`, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }],
    } }] }],
  })
  const replied = new Promise<void>((resolve) => waiting.set(waId, resolve))
  const started = performance.now()
  const res = await fetch(webhooksUrl, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(raw).digest('hex')}` }, body: raw })
  if (res.status !== 200) throw new Error(`webhook answered ${res.status}`)
  await replied
  return performance.now() - started
}

const latencies: number[] = []
const deadline = Date.now() + DEADLINE_MS
const startedAt = Date.now()
await Promise.all(Array.from({ length: CONVERSATIONS }, async (_, c) => {
  const waId = `5521${String(900_000_000 + c)}`
  // Conversations start spread over one think time, as people do not all write in the same millisecond.
  await new Promise((r) => setTimeout(r, Math.random() * THINK_MS))
  for (let t = 0; t < TURNS && Date.now() < deadline; t++) {
    latencies.push(await turn(waId, `answer ${t}`))
    if (THINK_MS > 0) await new Promise((r) => setTimeout(r, THINK_MS * (0.5 + Math.random())))
  }
}))
const elapsedS = (Date.now() - startedAt) / 1000

clearInterval(scanner)
await runner.stop()
await wa.stop()
await webhooks.close()
const [events] = await db.owner<{ applied: number; pending: number }[]>`
  select count(*) filter (where status = 'applied')::int as applied, count(*) filter (where status <> 'applied')::int as pending from conversations.events`
// Where the time goes, per stage (p50 / p99 ms), from the rows' own timestamps.
const stages = await db.owner<{ stage: string; p50: number; p99: number }[]>`
  select 'inbox -> processed' as stage, percentile_cont(0.5) within group (order by ms) as p50, percentile_cont(0.99) within group (order by ms) as p99
    from (select extract(epoch from processed_at - received_at) * 1000 as ms from whatsapp.webhook_deliveries where payload::text like '%"messages"%') x
  union all
  select 'bot event queued -> applied', percentile_cont(0.5) within group (order by ms), percentile_cont(0.99) within group (order by ms)
    from (select extract(epoch from applied_at - created_at) * 1000 as ms from conversations.events) x
  union all
  select 'reply queued -> accepted', percentile_cont(0.5) within group (order by ms), percentile_cont(0.99) within group (order by ms)
    from (select extract(epoch from accepted_at - created_at) * 1000 as ms from whatsapp.outbound_sends) x`
await db.close()

latencies.sort((a, b) => a - b)
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!.toFixed(1)
console.log(`bot latency, webhook in -> reply at the emulator: ${CONVERSATIONS} conversations x ${TURNS} turns, think time ${THINK_MS} ms, worker concurrency ${CONCURRENCY}`)
console.log(`turns ${latencies.length} in ${elapsedS.toFixed(1)} s (${(latencies.length / elapsedS).toFixed(0)} turns/s); events applied ${events!.applied}, not applied ${events!.pending}`)
console.log(`p50 ${pct(50)} ms   p90 ${pct(90)} ms   p99 ${pct(99)} ms   max ${latencies.at(-1)!.toFixed(1)} ms`)
for (const st of stages) console.log(`  ${st.stage.padEnd(28)} p50 ${Number(st.p50).toFixed(1)} ms   p99 ${Number(st.p99).toFixed(1)} ms`)
