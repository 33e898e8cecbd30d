/**
 * Form submission throughput, against the bare-route ceiling, in one run (loopback only, bounded in time).
 *
 * Part 1, acknowledgement: autocannon posts distinct, valid JSON submissions (each a new person, with a browser
 * Origin and consent) to
 *   (a) a bare Fastify route answering 201 (the ceiling),
 *   (b) our POST /forms/:publicKey/submissions: rate limits, form lookup, CORS and origin check, validation, then
 *       the submission and its job committed to the inbox (group commit) before the answer,
 *   (c) the same with returning people (1,000 emails over and over),
 * then checks that every 201 is a stored submission. Target: (b) ≥ 0.4× (a).
 * Part 2, processing: the worker applies everything part 1 stored (identity resolution, submission, interaction,
 * consent, event), timed, then checks every acknowledged submission was applied once and no person has two leads.
 *
 * Environment: BENCH_SECONDS (per target, default 10), BENCH_CONNECTIONS (50), BENCH_POOL_MAX (20),
 * WORKER_CONCURRENCY (4), BENCH_DATABASE_URL (else an embedded PostgreSQL in a temp folder).
 */
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { parseConfig } from '../../lib/config.js'
import { createLogger } from '../../lib/logger.js'
import { readMigrationFiles } from '../../lib/migrate.js'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { createForm } from '../../domains/marketing/forms/service.js'
import { FormDefinition } from '../../domains/marketing/forms/schemas.js'
import { buildWebhooksApp } from '../../services/webhooks/app.js'
import { loadTest, printComparison, runWorkerUntilDrained, startBenchDatabase, type LoadResult } from './harness.js'

const SECONDS = Math.min(Number(process.env.BENCH_SECONDS ?? 10), 60)
const CONNECTIONS = Math.min(Number(process.env.BENCH_CONNECTIONS ?? 50), 500)
const CONCURRENCY = Math.min(Number(process.env.WORKER_CONCURRENCY ?? 4), 32)
const ORIGIN = 'https://clinic.example'

const log = createLogger({ level: 'warn', service: 'bench' })
// The limits are what we measure around, not what we measure: set out of reach.
const config = parseConfig({ NODE_ENV: 'development', LOG_LEVEL: 'warn', FORM_RATE_LIMIT_PER_IP_PER_MINUTE: '100000000', FORM_RATE_LIMIT_PER_FORM_PER_MINUTE: '100000000' })
const db = await startBenchDatabase({ poolMax: Number(process.env.BENCH_POOL_MAX ?? 20) })

const { tenant } = await createTenantWithFirstKey(db.sql, { name: 'Bench', slug: 'bench', defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'k' })
const form = await createForm(db.sql, { tenantId: tenant.id, actor: 'bench', requestId: null }, FormDefinition.parse({
  name: 'Bench form',
  fields: [
    { name: 'name', label: 'Name', type: 'text', required: true },
    { name: 'email', label: 'Email', type: 'email', required: true },
    { name: 'phone', label: 'Phone', type: 'phone' },
    { name: 'plan', label: 'Plan', type: 'select', options: [{ value: 'basic', label: 'Basic' }, { value: 'premium', label: 'Premium' }] },
  ],
  allowedOrigins: [ORIGIN],
  consent: { required: true, text: 'Contact me on WhatsApp', policyVersion: 'v1' },
}))

const run = randomBytes(3).toString('hex')
let seq = 0
const submission = (returning: boolean) => {
  seq++
  const n = returning ? seq % 1000 : seq
  return JSON.stringify({
    name: `Lead ${n}`, email: `lead${n}.${returning ? 'back' : run}@example.com`, phone: `(11) 9${String(1000_0000 + (n % 9000_0000)).slice(0, 4)}-${String(n % 10000).padStart(4, '0')}`,
    plan: 'premium', consent: true, utm_source: 'bench', started_at: Date.now() - 20_000,
  })
}
const request = (returning: boolean) => () => ({ headers: { 'content-type': 'application/json', origin: ORIGIN }, body: submission(returning) })

const bare = Fastify()
bare.post('/forms/:publicKey/submissions', async (_req, reply) => reply.code(201).send({ status: 'accepted' }))
const ours = await buildWebhooksApp({ config, sql: db.sql, log, migrations: await readMigrationFiles() })
const path = `/forms/${form.publicKey}/submissions`
const bareUrl = `${await bare.listen({ host: '127.0.0.1', port: 0 })}${path}`
const oursUrl = `${await ours.listen({ host: '127.0.0.1', port: 0 })}${path}`

// The worker is not running in part 1: what was acknowledged waits in the inbox.
const stored = async () => (await db.owner<{ n: number }[]>`
  select (select count(*) from marketing.form_submission_inbox)::int + (select count(*) from marketing.form_submissions)::int as n`)[0]!.n
console.log(`\nPart 1: acknowledgement, ${CONNECTIONS} connections, ${SECONDS} s each, distinct valid JSON bodies\n`)
const results: LoadResult[] = []
results.push(await loadTest({ name: 'bare route', url: bareUrl, connections: CONNECTIONS, durationSeconds: SECONDS, setupRequest: request(false) }))
const checks: string[] = []
for (const [name, returning] of [['ours, new people', false], ['ours, returning people', true]] as const) {
  const before = await stored()
  const r = await loadTest({ name, url: oursUrl, connections: CONNECTIONS, durationSeconds: SECONDS, setupRequest: request(returning) })
  results.push(r)
  const acked = r.total - r.non2xx - r.errors
  const inFlight = (await stored()) - before - acked
  checks.push(`${name}: ${acked} acknowledged, ${acked + inFlight} stored (${inFlight >= 0 && inFlight <= CONNECTIONS ? `every acknowledgement stored; ${inFlight} in flight at the deadline` : 'MISMATCH'})`)
}
printComparison(results, ['bare route'])
for (const line of checks) console.log(line)

// autocannon stops at the deadline with requests still in flight: let them finish before the worker starts.
await new Promise((resolve) => setTimeout(resolve, 1000))
await Promise.all([bare.close(), ours.close()])
const waiting = (await db.owner<{ n: number }[]>`select count(*)::int as n from marketing.form_submission_inbox`)[0]!.n
console.log(`\nPart 2: processing the ${waiting} stored submissions (worker concurrency ${CONCURRENCY})`)
const { seconds } = await runWorkerUntilDrained({
  db, config, log, concurrency: CONCURRENCY,
  remaining: async () => (await db.owner<{ n: number }[]>`select count(*)::int as n from marketing.form_submission_inbox where status = 'received'`)[0]!.n,
})
const [after] = await db.owner<{ submissions: number; left: number; interactions: number }[]>`
  select (select count(*)::int from marketing.form_submissions) as submissions,
         (select count(*)::int from marketing.form_submission_inbox) as left,
         (select count(*)::int from marketing.lead_interactions where type = 'form_submitted') as interactions`
console.log(`processed ${waiting - after!.left} submissions in ${seconds.toFixed(2)} s: ${((waiting - after!.left) / seconds).toFixed(0)} submissions/s`)
console.log(`check: ${after!.submissions} submissions applied, ${after!.interactions} form interactions, ${after!.left} left in the inbox (failed or parked)`)
const [leads] = await db.owner<{ live: number; dupes: number }[]>`
  select count(*) filter (where merged_into is null)::int as live,
         (select count(*)::int from (select email from marketing.leads where merged_into is null group by email having count(*) > 1) d) as dupes
    from marketing.leads`
console.log(`leads: ${leads!.live} live, ${leads!.dupes} duplicate emails`)
await db.close()
process.exit(0)
