/**
 * Erasure at scale: one lead with 10,000 messages, 10,000 analytics events and 1,000 interactions, among 1,000,000
 * leads of the same tenant (and a second tenant), erased by the real job's code (domains/privacy/erasure.ts runErasure,
 * what privacy__erase_subject runs), verification pass included. The baseline, in the same run: erasing a lead with no
 * history (the fixed cost: resolution, the catalog's steps, the sweep of every column of every table). Then it checks
 * that every other lead's rows are exactly as they were. Target: under 5 s.
 *
 * Environment: BENCH_LEADS (default 1,000,000), BENCH_SUBJECT_MESSAGES (10,000), BENCH_SUBJECT_EVENTS (10,000),
 * BENCH_SUBJECT_INTERACTIONS (1,000), BENCH_OTHER_MESSAGES (100,000: spread over other leads), BENCH_DATABASE_URL.
 */
import { SecretBox } from '../../lib/crypto.js'
import { withTenant } from '../../lib/db.js'
import { requestErasure, runErasure } from '../../domains/privacy/erasure.js'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { registerPhoneNumber } from '../../domains/whatsapp/numbers.js'
import { startBenchDatabase } from './harness.js'

const cap = (name: string, fallback: number, max: number) => Math.min(Number(process.env[name] ?? fallback), max)
const LEADS = cap('BENCH_LEADS', 1_000_000, 5_000_000)
const MESSAGES = cap('BENCH_SUBJECT_MESSAGES', 10_000, 200_000)
const EVENTS = cap('BENCH_SUBJECT_EVENTS', 10_000, 200_000)
const INTERACTIONS = cap('BENCH_SUBJECT_INTERACTIONS', 1_000, 100_000)
const OTHER_MESSAGES = cap('BENCH_OTHER_MESSAGES', 100_000, 1_000_000)
const TARGET_MS = 5_000

const secrets = SecretBox.fromConfig(undefined)
const db = await startBenchDatabase({ poolMax: 4 })
const { tenant } = await createTenantWithFirstKey(db.sql, { name: 'Bench', slug: 'bench', defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'k' })
const { tenant: other } = await createTenantWithFirstKey(db.sql, { name: 'Other', slug: 'other', defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'k' })
const number = await registerPhoneNumber(db.sql, secrets, tenant.id, 'bench', {
  phoneNumberId: '100000000000009', wabaId: '200000000000009', displayPhoneNumber: '+1 555 000 0009', accessToken: 'EAAG-bench', app: { mode: 'platform' },
})

// ---------------------------------------------------------------------------------------------------------
// Seed, as the owner, in bounded batches. Lead g: phone +55119<g, 8 digits>, email lead<g>@example.com.
const seeded = performance.now()
const phone = (g: number) => `+55119${String(g).padStart(8, '0')}`
for (const [tenantId, count] of [[tenant.id, LEADS], [other.id, 10_000]] as const) {
  for (let from = 1; from <= count; from += 250_000) {
    const to = Math.min(count, from + 249_999)
    await db.owner`
      insert into marketing.leads (tenant_id, email, phone_e164, phone_key, wa_id, name, source, fields)
      select ${tenantId}, 'lead' || g || '@example.com', '+55119' || lpad(g::text, 8, '0'), '+55119' || lpad(g::text, 8, '0'),
             '55119' || lpad(g::text, 8, '0'), 'Lead ' || g, 'whatsapp', jsonb_build_object('n', g)
        from generate_series(${from}::int, ${to}::int) g`
  }
}
const leadOf = async (g: number) => (await db.owner<{ id: string }[]>`select id from marketing.leads where tenant_id = ${tenant.id} and phone_key = ${phone(g)}`)[0]!.id

/** A lead's history: messages (content naming them), events, interactions, a service window; other leads get some too. */
async function giveHistory(leadId: string, g: number, messages: number, events: number, interactions: number) {
  for (let from = 1; from <= messages; from += 50_000) {
    const to = Math.min(messages, from + 49_999)
    await db.owner`
      insert into whatsapp.messages (tenant_id, phone_number_id, lead_id, direction, wamid, wa_id, type, content, status, occurred_at)
      select ${tenant.id}, ${number.id}, ${leadId}, 'inbound', 'wamid.' || ${g}::text || '.' || i, ${phone(g).slice(1)}, 'text',
             jsonb_build_object('body', 'message ' || i || ' from Lead ' || ${g}::text), 'received', now() - i * interval '1 second'
        from generate_series(${from}::int, ${to}::int) i`
  }
  if (events > 0) {
    await db.owner`
      insert into analytics.events (tenant_id, name, lead_id, occurred_at, properties, dedupe_key)
      select ${tenant.id}, 'whatsapp.message_received', ${leadId}, now() - i * interval '1 second', jsonb_build_object('i', i), 'ev:' || ${leadId}::text || ':' || i
        from generate_series(1, ${events}::int) i`
  }
  if (interactions > 0) {
    await db.owner`
      insert into marketing.lead_interactions (tenant_id, lead_id, type, channel, occurred_at, details, dedupe_key)
      select ${tenant.id}, ${leadId}, 'whatsapp_message', 'whatsapp', now() - i * interval '1 second', jsonb_build_object('i', i), 'in:' || ${leadId}::text || ':' || i
        from generate_series(1, ${interactions}::int) i`
  }
  await db.owner`insert into whatsapp.service_windows (tenant_id, phone_number_id, wa_id, lead_id, last_inbound_at)
                 values (${tenant.id}, ${number.id}, ${phone(g).slice(1)}, ${leadId}, now()) on conflict do nothing`
}

const subjectG = Math.ceil(LEADS / 2)
const baselineG = Math.ceil(LEADS / 3)
const subject = await leadOf(subjectG)
const baseline = await leadOf(baselineG)
await giveHistory(subject, subjectG, MESSAGES, EVENTS, INTERACTIONS)
// Others: OTHER_MESSAGES spread over 1,000 leads (as many events, a tenth as many interactions), set-based.
const otherGs = Array.from({ length: 1_000 }, (_, k) => 1 + k * Math.floor(LEADS / 1_000)).filter((g) => g !== subjectG && g !== baselineG)
const others = (await db.owner<{ id: string }[]>`
  select id from marketing.leads where tenant_id = ${tenant.id} and phone_key = any(${otherGs.map(phone)}::text[])`).map((r) => r.id)
const perOther = Math.floor(OTHER_MESSAGES / 1_000)
await db.owner`
  insert into whatsapp.messages (tenant_id, phone_number_id, lead_id, direction, wamid, wa_id, type, content, status, occurred_at)
  select ${tenant.id}, ${number.id}, l.id, 'inbound', 'wamid.o.' || l.id || '.' || i, l.wa_id, 'text', jsonb_build_object('body', 'message ' || i || ' from ' || l.name), 'received', now() - i * interval '1 second'
    from marketing.leads l cross join generate_series(1, ${perOther}::int) i where l.id = any(${others}::uuid[])`
await db.owner`
  insert into analytics.events (tenant_id, name, lead_id, occurred_at, properties, dedupe_key)
  select ${tenant.id}, 'whatsapp.message_received', l.id, now() - i * interval '1 second', jsonb_build_object('i', i), 'ev:o:' || l.id || ':' || i
    from marketing.leads l cross join generate_series(1, ${perOther}::int) i where l.id = any(${others}::uuid[])`
await db.owner`
  insert into marketing.lead_interactions (tenant_id, lead_id, type, channel, occurred_at, details, dedupe_key)
  select ${tenant.id}, l.id, 'whatsapp_message', 'whatsapp', now() - i * interval '1 second', jsonb_build_object('i', i), 'in:o:' || l.id || ':' || i
    from marketing.leads l cross join generate_series(1, ${Math.ceil(perOther / 10)}::int) i where l.id = any(${others}::uuid[])`
await db.owner`
  insert into whatsapp.service_windows (tenant_id, phone_number_id, wa_id, lead_id, last_inbound_at)
  select ${tenant.id}, ${number.id}, l.wa_id, l.id, now() from marketing.leads l where l.id = any(${others}::uuid[])`
await db.owner`vacuum analyze`
console.log(`\nseeded ${LEADS.toLocaleString()} leads (+10,000 in another tenant); the subject has ${MESSAGES.toLocaleString()} messages, ${EVENTS.toLocaleString()} events and ${INTERACTIONS.toLocaleString()} interactions; ${others.length} other leads share ${OTHER_MESSAGES.toLocaleString()} messages; in ${((performance.now() - seeded) / 1000).toFixed(1)} s`)

// ---------------------------------------------------------------------------------------------------------
const snapshot = () => db.owner<{ leads: number; messages: number; events: number; eventsAnon: number; interactions: number; windows: number; digest: string }[]>`
  select (select count(*)::int from marketing.leads) as leads,
         (select count(*)::int from whatsapp.messages) as messages,
         (select count(*)::int from analytics.events) as events,
         (select count(*)::int from analytics.events where lead_id is null) as events_anon,
         (select count(*)::int from marketing.lead_interactions) as interactions,
         (select count(*)::int from whatsapp.service_windows) as windows,
         (select md5(string_agg(m.id::text || m.content::text, ',' order by m.id)) from whatsapp.messages m where m.lead_id = any(${others}::uuid[])) as digest`.then((r) => r[0]!)

async function erase(leadId: string): Promise<{ ms: number; steps: [string, number][]; receipt: unknown; status: string }> {
  const who = { tenantId: tenant.id, actor: 'bench', requestId: null }
  const view = await requestErasure({ sql: db.sql, secrets }, who, { leadId })
  const steps: [string, number][] = []
  let last = performance.now()
  const started = last
  const outcome = await runErasure({ sql: db.sql, secrets }, tenant.id, view.id, {
    afterStep: (step) => {
      const now = performance.now()
      steps.push([step, now - last])
      last = now
    },
  })
  const ms = performance.now() - started
  steps.push(['verify + complete', performance.now() - last])
  const row = await withTenant(db.sql, tenant.id, (tx) => tx<{ tables: unknown }[]>`select tables from privacy.erasure_requests where id = ${view.id}`)
  return { ms, steps, receipt: row[0]!.tables, status: outcome }
}

const before = await snapshot()
const base = await erase(baseline)
const afterBase = await snapshot()
const run = await erase(subject)
const after = await snapshot()

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`
console.log('\nerasure                                    time      status')
console.log(`baseline: a lead with no history           ${fmt(base.ms).padEnd(9)} ${base.status}`)
console.log(`the subject (${MESSAGES} msgs, ${EVENTS} events, ${INTERACTIONS} interactions)  ${fmt(run.ms).padEnd(9)} ${run.status}   target < ${fmt(TARGET_MS)}: ${run.ms < TARGET_MS ? 'met' : 'MISSED'}`)
console.log('\nsubject, per step (ms):')
for (const [step, ms] of run.steps) if (ms >= 1) console.log(`  ${step.padEnd(40)} ${ms.toFixed(0)}`)
console.log('\nreceipt:', JSON.stringify(run.receipt))

// Everyone else untouched: only the two erased leads and the subject's own rows changed.
const checks: [string, boolean][] = [
  ['leads: exactly the two erased ones are gone', after.leads === before.leads - 2],
  ['messages: exactly the subject\'s are gone', after.messages === before.messages - MESSAGES && afterBase.messages === before.messages],
  ['events: none deleted, exactly the subject\'s anonymised', after.events === before.events && after.eventsAnon === before.eventsAnon + EVENTS],
  ['interactions: exactly the subject\'s are gone', after.interactions === before.interactions - INTERACTIONS],
  ['service windows: exactly the subject\'s', after.windows === before.windows - 1],
  ['other leads\' messages byte for byte the same', after.digest === before.digest],
]
console.log('')
for (const [what, ok] of checks) console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`)
await db.close()
if (checks.some(([, ok]) => !ok) || run.status !== 'completed' || base.status !== 'completed') process.exitCode = 1
