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
 * BENCH_PART=2 skips the HTTP load: BENCH_SUBMISSIONS (default 40,000; half new people, half 1,000 returning ones)
 * go through the same validation and group-committed inbox from BENCH_CONNECTIONS concurrent submitters, then part 2
 * runs as usual. Quicker on a shared machine, and the same backlog for both sides of a before/after comparison.
 * BENCH_EXISTING_LEADS (default 100,000): leads the tenant already has (none of them the bench's people), analyzed.
 */
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { parseConfig } from '../../lib/config.js'
import { createLogger } from '../../lib/logger.js'
import { readMigrationFiles } from '../../lib/migrate.js'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { acceptSubmission, createForm, loadPublicForm } from '../../domains/marketing/forms/service.js'
import { SubmissionInbox } from '../../domains/marketing/forms/inbox.js'
import { FormDefinition } from '../../domains/marketing/forms/schemas.js'
import { buildWebhooksApp } from '../../services/webhooks/app.js'
import { loadTest, printComparison, runWorkerUntilDrained, startBenchDatabase, type LoadResult } from './harness.js'

const SECONDS = Math.min(Number(process.env.BENCH_SECONDS ?? 10), 60)
const CONNECTIONS = Math.min(Number(process.env.BENCH_CONNECTIONS ?? 50), 500)
const CONCURRENCY = Math.min(Number(process.env.WORKER_CONCURRENCY ?? 4), 32)
const ORIGIN = 'https://clinic.example'
const PART_2_ONLY = process.env.BENCH_PART === '2'
const SUBMISSIONS = Math.min(Number(process.env.BENCH_SUBMISSIONS ?? 40_000), 400_000)
const EXISTING_LEADS = Math.min(Number(process.env.BENCH_EXISTING_LEADS ?? 100_000), 2_000_000)

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

// A tenant with history: leads that are none of the bench's people, with the statistics autovacuum would have
// gathered by now (a table that grew from empty within the run has none, and every plan guesses).
if (EXISTING_LEADS > 0) {
  await db.owner.begin(async (tx) => {
    await tx`select set_config('app.tenant_id', ${tenant.id}, true)`
    await tx`
      insert into marketing.leads (tenant_id, email, phone_e164, phone_key, name, source, first_seen_at, last_seen_at)
      select ${tenant.id}, 'earlier' || i || '@example.org', '+55219' || lpad(i::text, 8, '0'), '+55219' || lpad(i::text, 8, '0'), 'Earlier ' || i, 'import', now(), now()
        from generate_series(1, ${EXISTING_LEADS}::int) i`
  })
  await db.owner`analyze marketing.leads`
  console.log(`${EXISTING_LEADS} earlier leads in the tenant (analyzed)`)
}

const run = randomBytes(3).toString('hex')
let seq = 0
const submission = (returning: boolean) => {
  seq++
  // Returning people are numbered apart from new ones, so no new person shares a phone with a returning one.
  const n = returning ? 5_000_000 + (seq % 1000) : seq
  return JSON.stringify({
    name: `Lead ${n}`, email: `lead${n}.${returning ? 'back' : run}@example.com`, phone: `(11) 9${String(1000_0000 + (n % 9000_0000)).slice(0, 4)}-${String(n % 10000).padStart(4, '0')}`,
    plan: 'premium', consent: true, utm_source: 'bench', started_at: Date.now() - 20_000,
  })
}
const request = (returning: boolean) => () => ({ headers: { 'content-type': 'application/json', origin: ORIGIN }, body: submission(returning) })

if (PART_2_ONLY) {
  // The same validation and inbox as the route, without HTTP: concurrent submitters, so the group commit makes batches.
  const inbox = new SubmissionInbox(db.sql)
  const publicForm = await loadPublicForm(db.sql, form.publicKey)
  let next = 0
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (next < SUBMISSIONS) {
      const returning = next++ >= SUBMISSIONS / 2
      await acceptSubmission(inbox, publicForm, JSON.parse(submission(returning)), { ip: '127.0.0.1', userAgent: 'bench', referer: null, requestId: null })
    }
  }))
  console.log(`\nPart 1 skipped (BENCH_PART=2): ${SUBMISSIONS} submissions stored through the inbox, half new people, half 1,000 returning`)
} else {
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
}
const waiting = (await db.owner<{ n: number }[]>`select count(*)::int as n from marketing.form_submission_inbox`)[0]!.n
const [jobs] = await db.owner<{ n: number }[]>`
  select count(*)::int as n from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id
   where t.identifier = 'marketing__process_submissions'`
console.log(`\nPart 2: processing the ${waiting} stored submissions, ${jobs!.n} batch jobs of ${(waiting / Math.max(jobs!.n, 1)).toFixed(1)} on average (worker concurrency ${CONCURRENCY})`)
const { seconds } = await runWorkerUntilDrained({
  db, config, log, concurrency: CONCURRENCY,
  remaining: async () => (await db.owner<{ n: number }[]>`select count(*)::int as n from marketing.form_submission_inbox where status = 'received'`)[0]!.n,
})
const [after] = await db.owner<{ submissions: number; left: number; interactions: number }[]>`
  select (select count(*)::int from marketing.form_submissions) as submissions,
         (select count(*)::int from marketing.form_submission_inbox) as left,
         (select count(*)::int from marketing.lead_interactions where type = 'form_submitted') as interactions`
const applied = waiting - after!.left
console.log(`processed ${applied} submissions in ${seconds.toFixed(2)} s: ${(applied / seconds).toFixed(0)} submissions/s`)
console.log(`check: ${after!.submissions} submissions applied, ${after!.interactions} form interactions, ${after!.left} left in the inbox (failed or parked)`)
const [leads] = await db.owner<{ live: number; merged: number; dupeEmails: number; dupePhones: number }[]>`
  select count(*) filter (where merged_into is null and email not like 'earlier%')::int as live,
         count(*) filter (where merged_into is not null)::int as merged,
         (select count(*)::int from (select 1 from marketing.leads where merged_into is null and email is not null group by tenant_id, email having count(*) > 1) d) as dupe_emails,
         (select count(*)::int from (select 1 from marketing.leads where merged_into is null and phone_key is not null group by tenant_id, phone_key having count(*) > 1) d) as dupe_phones
    from marketing.leads`
// Every person the bench submits has one email and one phone, so a duplicate lead shows as an email or phone held
// by two live leads, or as a live lead per email beyond one.
const [people] = await db.owner<{ emails: number }[]>`select count(distinct email)::int as emails from marketing.leads where email is not null and email not like 'earlier%'`
console.log(`leads: ${leads!.live} live (${people!.emails} distinct emails), ${leads!.merged} merged; duplicate leads: ${leads!.dupeEmails} by email, ${leads!.dupePhones} by phone, ${leads!.live - people!.emails} live leads beyond one per person`)
await db.close()
process.exit(0)
