/**
 * `npm run bench:webhooks`: how fast WhatsApp deliveries are acknowledged, and processed.
 *
 * Part 1, acknowledgement: autocannon (loopback, bounded) posts validly signed, distinct deliveries to
 *   (a) a bare Fastify route answering 200 (the ceiling), (b) a naive handler doing one INSERT per request
 *   (what most peers do), (c) our POST /webhooks/whatsapp (verify, validate, group commit with its job),
 * all in this run, and prints req/s, p50, p99 and the ratios. Then it checks that every acknowledged delivery is
 * stored once (zero lost, zero doubled).
 * Part 2, processing: N deliveries stored, the worker started, and the time until every message is applied,
 * with the counts checked afterwards.
 *
 * Environment: BENCH_SECONDS (per target, default 10), BENCH_CONNECTIONS (50), BENCH_MESSAGES (20000),
 * BENCH_MESSAGES_PER_DELIVERY (1), WORKER_CONCURRENCY (4), BENCH_DATABASE_URL (else embedded).
 */
import { createHmac, randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { parseConfig } from '../../lib/config.js'
import { createLogger } from '../../lib/logger.js'
import { readMigrationFiles } from '../../lib/migrate.js'
import { withTenant } from '../../lib/db.js'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { registerPhoneNumber } from '../../domains/whatsapp/numbers.js'
import { verifyMetaSignature } from '../../domains/whatsapp/signature.js'
import { SecretBox } from '../../lib/crypto.js'
import { buildWebhooksApp } from '../../services/webhooks/app.js'
import { loadTest, printComparison, runWorkerUntilDrained, startBenchDatabase, type LoadResult } from './harness.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 20_000)
const PER_DELIVERY = Number(process.env.BENCH_MESSAGES_PER_DELIVERY ?? 1)
const CONCURRENCY = Number(process.env.WORKER_CONCURRENCY ?? 4)
const SECRET = 'dev-meta-app-secret'
const PHONE_NUMBER_ID = '100200300400500'
const WABA_ID = '900800700600500'

const log = createLogger({ level: 'warn', service: 'bench' })
const config = parseConfig({ NODE_ENV: 'development', LOG_LEVEL: 'warn' })
const db = await startBenchDatabase({ poolMax: 20 })

const { tenant } = await createTenantWithFirstKey(db.sql, { name: 'Bench', slug: 'bench', defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'k' })
await registerPhoneNumber(db.sql, SecretBox.fromConfig(undefined), tenant.id, 'bench', {
  phoneNumberId: PHONE_NUMBER_ID, wabaId: WABA_ID, displayPhoneNumber: '+1 555 010 0000', accessToken: 'EAAG-bench-token-0000000000', app: { mode: 'platform' },
})

let seq = 0
/** A distinct, realistic delivery each time: Meta never sends the same bytes twice unless it is retrying. */
function makeDelivery(messages = PER_DELIVERY): string {
  const now = Math.floor(Date.now() / 1000)
  const msgs = Array.from({ length: messages }, () => {
    seq++
    return { from: `55119${String(80_000_000 + (seq % 5000)).padStart(8, '0')}`, id: `wamid.bench${seq}${randomBytes(8).toString('hex')}`, timestamp: String(now), type: 'text', text: { body: `Olá, mensagem ${seq}` } }
  })
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: WABA_ID, changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: '15550100000', phone_number_id: PHONE_NUMBER_ID },
      contacts: msgs.map((m) => ({ profile: { name: 'Lead' }, wa_id: m.from })),
      messages: msgs,
    } }] }],
  })
}
const sign = (body: string) => `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`
const signedRequest = () => {
  const body = makeDelivery()
  return { headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(body) }, body }
}

// (a) the ceiling: Fastify answering 200 to the same requests.
const bare = Fastify()
bare.post('/webhooks/whatsapp', async () => ({ received: true }))
// (b) the naive handler: verify, then one INSERT per request (its own commit, its own fsync).
const naive = Fastify()
naive.removeContentTypeParser('application/json')
naive.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: 3_145_728 }, (_r, body, done) => done(null, body))
naive.post('/webhooks/whatsapp', async (req, reply) => {
  const raw = req.body as Buffer
  if (!verifyMetaSignature(raw, req.headers['x-hub-signature-256'] as string, SECRET)) return reply.code(401).send()
  await db.sql`insert into whatsapp.webhook_deliveries (body_sha256, payload) values (sha256(${raw}), ${raw.toString()}::jsonb) on conflict do nothing`
  return { received: true }
})
// (c) ours.
const ours = await buildWebhooksApp({ config, sql: db.sql, log, migrations: await readMigrationFiles() })

const urls: Record<string, string> = {}
for (const [name, app] of [['bare route', bare], ['naive insert', naive], ['ours', ours]] as const) {
  urls[name] = `${await app.listen({ host: '127.0.0.1', port: 0 })}/webhooks/whatsapp`
}

console.log(`\nPart 1: acknowledgement, ${CONNECTIONS} connections, ${SECONDS} s each, distinct signed deliveries of ${PER_DELIVERY} message(s)\n`)
const results: LoadResult[] = []
const storedBy: Record<string, number> = {}
const storedRows = async () => (await db.owner<{ n: number }[]>`select count(*)::int as n from whatsapp.webhook_deliveries`)[0]!.n
for (const name of ['bare route', 'naive insert', 'ours']) {
  const before = await storedRows()
  results.push(await loadTest({ name, url: urls[name]!, connections: CONNECTIONS, durationSeconds: SECONDS, setupRequest: () => signedRequest() }))
  storedBy[name] = (await storedRows()) - before
}
printComparison(results, ['bare route', 'naive insert'])

// Every 200 must be a stored row, and no delivery stored twice (each request carried distinct bytes).
for (const name of ['naive insert', 'ours']) {
  const r = results.find((x) => x.name === name)!
  const acked = r.total - r.non2xx - r.errors
  // autocannon stops counting at the deadline, so up to one request per connection is stored but not counted.
  const inFlight = storedBy[name]! - acked
  const ok = inFlight >= 0 && inFlight <= CONNECTIONS
  console.log(`${name}: acknowledged ${acked}, stored ${storedBy[name]} (${ok ? `every acknowledgement stored; ${inFlight} more were in flight at the deadline` : 'MISMATCH: an acknowledged delivery is missing'})`)
}
await Promise.all([bare.close(), naive.close(), ours.close()])

// Part 2: processing. Clear part 1's rows, store N messages' worth of deliveries, then time the worker.
await db.owner`truncate whatsapp.webhook_deliveries cascade`
await db.owner`delete from graphile_worker._private_jobs`
const ingest = await buildWebhooksApp({ config, sql: db.sql, log, migrations: await readMigrationFiles() })
const deliveriesNeeded = Math.ceil(MESSAGES / PER_DELIVERY)
console.log(`\nPart 2: processing ${deliveriesNeeded * PER_DELIVERY} messages in ${deliveriesNeeded} deliveries (worker concurrency ${CONCURRENCY})`)
for (let i = 0; i < deliveriesNeeded; i += 200) {
  await Promise.all(Array.from({ length: Math.min(200, deliveriesNeeded - i) }, async () => {
    const { headers, body } = signedRequest()
    const res = await ingest.inject({ method: 'POST', url: '/webhooks/whatsapp', headers, payload: body })
    if (res.statusCode !== 200) throw new Error(`ingest failed: ${res.statusCode} ${res.body}`)
  }))
}
await ingest.close()
const before = await withTenant(db.sql, tenant.id, (tx) => tx<{ n: number }[]>`select count(*)::int as n from whatsapp.messages`)
const { seconds } = await runWorkerUntilDrained({
  db, config, log, concurrency: CONCURRENCY,
  remaining: async () => (await db.owner<{ n: number }[]>`select count(*)::int as n from whatsapp.webhook_deliveries where status <> 'processed'`)[0]!.n,
})
const [after] = await withTenant(db.sql, tenant.id, (tx) => tx<{ messages: number; interactions: number; dupes: number }[]>`
  select (select count(*)::int from whatsapp.messages) as messages,
         (select count(*)::int from marketing.lead_interactions where type = 'whatsapp_message') as interactions,
         (select count(*)::int from (select wamid from whatsapp.messages group by wamid having count(*) > 1) d) as dupes`)
const applied = after!.messages - before[0]!.n
console.log(`processed ${applied} messages in ${seconds.toFixed(2)} s: ${(applied / seconds).toFixed(0)} messages/s`)
console.log(`check: messages ${applied}/${deliveriesNeeded * PER_DELIVERY} (lost ${deliveriesNeeded * PER_DELIVERY - applied}), interactions ${after!.interactions}, duplicate wamids ${after!.dupes}`)
await db.close()
process.exit(0)
