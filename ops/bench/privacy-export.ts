/**
 * Subject-access export of one heavy lead (10,000 messages with their statuses, 10,000 analytics events, 1,000
 * interactions) in a database of many other leads, against a lead ten times smaller in the same run: the time of the
 * job that writes the document and of the GET that streams it, and the PEAK MEMORY of this process during each
 * (process.memoryUsage() sampled every few milliseconds, minus what it was just before). The export streams if the
 * heavy lead's peaks are about the small lead's; a document built in memory would cost tens of MB more.
 *
 * Environment: BENCH_OTHER_LEADS (default 200,000; each with a message and an event), BENCH_MESSAGES (10,000),
 * BENCH_EVENTS (10,000), BENCH_INTERACTIONS (1,000), BENCH_DATABASE_URL. Needs --expose-gc (the npm script sets it).
 */
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { registerPhoneNumber } from '../../domains/whatsapp/numbers.js'
import { produceExport, readExport, requestExport } from '../../domains/privacy/export.js'
import { SecretBox } from '../../lib/crypto.js'
import { startBenchDatabase } from './harness.js'

const OTHER_LEADS = Math.min(Number(process.env.BENCH_OTHER_LEADS ?? 200_000), 2_000_000)
const MESSAGES = Math.min(Number(process.env.BENCH_MESSAGES ?? 10_000), 200_000)
const EVENTS = Math.min(Number(process.env.BENCH_EVENTS ?? 10_000), 200_000)
const INTERACTIONS = Math.min(Number(process.env.BENCH_INTERACTIONS ?? 1_000), 20_000)

const db = await startBenchDatabase({ poolMax: 4 })
const { tenant, apiKey } = await createTenantWithFirstKey(db.sql, { name: 'Bench', slug: 'bench', defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'k' })
const number = await registerPhoneNumber(db.sql, SecretBox.fromConfig(undefined), tenant.id, 'bench', {
  phoneNumberId: '100000000000001', wabaId: '200000000000001', displayPhoneNumber: '+1 555 010 0000', accessToken: 'EAAG-bench-token-0000000000', app: { mode: 'platform' },
})
const o = db.owner

// ---------------------------------------------------------------------------------------------------------
// Seeding, as owner with generate_series, in bounded statements.
const seedStarted = performance.now()
for (let from = 1; from <= OTHER_LEADS; from += 100_000) {
  const to = Math.min(OTHER_LEADS, from + 99_999)
  await o`
    with leads as (
      insert into marketing.leads (tenant_id, email, phone_e164, phone_key, wa_id, name, source)
      select ${tenant.id}, 'other' || g || '@example.com', '+55119' || lpad(g::text, 8, '0'), '+55119' || lpad(g::text, 8, '0'),
             '55119' || lpad(g::text, 8, '0'), 'Other ' || g, 'whatsapp'
        from generate_series(${from}::int, ${to}::int) g
      returning id, wa_id
    ), messages as (
      insert into whatsapp.messages (tenant_id, phone_number_id, lead_id, direction, wamid, wa_id, type, content, status, occurred_at)
      select ${tenant.id}, ${number.id}, id, 'inbound', 'wamid.o-' || wa_id, wa_id, 'text', '{"body":"hello"}', 'received', now() from leads
      returning lead_id
    )
    insert into analytics.events (tenant_id, name, lead_id, occurred_at, properties)
    select ${tenant.id}, 'whatsapp.message_received', lead_id, now(), '{}' from messages`
}

/** A lead with these many messages, events and interactions, half the messages outbound with two statuses each. */
async function seedLead(tag: string, digit: number, messages: number, events: number, interactions: number): Promise<string> {
  const phone = `+552199990000${digit}`
  const [lead] = await o<{ id: string }[]>`
    insert into marketing.leads (tenant_id, email, phone_e164, phone_key, wa_id, name, source)
    values (${tenant.id}, ${`${tag}@example.com`}, ${phone}, ${phone}, ${phone.slice(1)}, ${tag}, 'whatsapp')
    returning id`
  const leadId = lead!.id
  await o`
    insert into whatsapp.messages (tenant_id, phone_number_id, lead_id, direction, wamid, wa_id, type, content, status, occurred_at)
    select ${tenant.id}, ${number.id}, ${leadId}, case when g % 2 = 0 then 'outbound' else 'inbound' end, 'wamid.' || ${tag} || '-' || g,
           '5521999990000', 'text', jsonb_build_object('body', repeat('a message of some length ', 8) || g), 'delivered', now() - g * interval '1 second'
      from generate_series(1, ${messages}) g`
  await o`
    insert into whatsapp.message_statuses (tenant_id, wamid, status, occurred_at, recipient_id)
    select ${tenant.id}, 'wamid.' || ${tag} || '-' || g, s, now(), '5521999990000'
      from generate_series(2, ${messages}, 2) g, unnest(array['sent', 'delivered']) s`
  await o`
    insert into analytics.events (tenant_id, name, lead_id, occurred_at, properties)
    select ${tenant.id}, 'page_viewed', ${leadId}, now() - g * interval '1 second', jsonb_build_object('path', '/pricing/' || g, 'referrer', 'https://search.example/?q=' || g)
      from generate_series(1, ${events}) g`
  await o`
    insert into marketing.lead_interactions (tenant_id, lead_id, type, channel, occurred_at, details)
    select ${tenant.id}, ${leadId}, 'note', 'api', now() - g * interval '1 second', jsonb_build_object('text', 'note ' || g)
      from generate_series(1, ${interactions}) g`
  return leadId
}

const small = await seedLead('small', 1, Math.ceil(MESSAGES / 10), Math.ceil(EVENTS / 10), Math.ceil(INTERACTIONS / 10))
const large = await seedLead('large', 2, MESSAGES, EVENTS, INTERACTIONS)
await o`vacuum analyze`
console.log(`\nseeded ${OTHER_LEADS.toLocaleString()} other leads (a message and an event each) and two subjects in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`)

// ---------------------------------------------------------------------------------------------------------
// Measuring. Each export runs twice: once timed, sampling memory as it is (V8 collects garbage when it likes, so
// these peaks include garbage not yet collected: the figure an operator's graph would show), and once with a full
// GC before every sample (every 50 ms), which shows what the export actually holds live. Time under forced GC means
// nothing and is not reported.
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with --expose-gc (npm run bench:privacy-export does)')
const MB = 1024 * 1024

async function measured<T>(fn: () => Promise<T>, live: boolean): Promise<{ result: T; ms: number; rss: number; heap: number }> {
  gc!()
  const base = process.memoryUsage()
  let peakRss = base.rss
  let peakHeap = base.heapUsed
  const sample = () => {
    if (live) gc!()
    const m = process.memoryUsage()
    peakRss = Math.max(peakRss, m.rss)
    peakHeap = Math.max(peakHeap, m.heapUsed)
  }
  const timer = setInterval(sample, live ? 50 : 2)
  const started = performance.now()
  try {
    const result = await fn()
    sample()
    return { result, ms: performance.now() - started, rss: (peakRss - base.rss) / MB, heap: (peakHeap - base.heapUsed) / MB }
  } finally {
    clearInterval(timer)
  }
}

const who = { tenantId: tenant.id, actor: `api_key:${apiKey.id}`, requestId: 'bench' }

/** One export, end to end: the request, the job that writes the document, a client reading the streamed GET. */
async function exportOnce(leadId: string, live: boolean) {
  const { id } = await requestExport(db.sql, who, { leadId })
  const job = await measured(() => produceExport(db.sql, tenant.id, id, 7), live)
  if (job.result !== 'ready') throw new Error(`export: ${job.result}`)
  let bytes = 0
  const get = await measured(async () => {
    const read = await readExport(db.sql, who, id, (err) => console.error(err))
    if (read.kind !== 'document') throw new Error('export not ready')
    // A client reading as fast as it can, keeping nothing.
    await pipeline(read.stream, new Writable({ write: (chunk: Buffer, _enc, done) => { bytes += chunk.length; done() } }))
    return read.view
  }, live)
  const rows = Object.values(get.result.rowCounts ?? {}).reduce((a, b) => a + b, 0)
  return { rows, mb: bytes / MB, job, get }
}

type Row = Awaited<ReturnType<typeof exportOnce>> & { lead: string }
const timed: Row[] = []
const live: Row[] = []
for (const [name, leadId] of [['small (warm-up)', small], ['small', small], ['large (10×)', large], ['small again', small]] as const) {
  timed.push({ lead: name, ...(await exportOnce(leadId, false)) })
  if (name !== 'small (warm-up)') live.push({ lead: name, ...(await exportOnce(leadId, true)) })
}

const f = (n: number, d = 1) => n.toFixed(d).padStart(9)
console.log('\ntimed (peaks as sampled, garbage included; MB above the level just before)')
console.log('lead               rows   doc MB   job ms heap↑ MB  rss↑ MB   GET ms heap↑ MB  rss↑ MB')
for (const r of timed) {
  console.log(`${r.lead.padEnd(16)}${String(r.rows).padStart(7)}${f(r.mb)}${f(r.job.ms, 0)}${f(r.job.heap)}${f(r.job.rss)}${f(r.get.ms, 0)}${f(r.get.heap)}${f(r.get.rss)}`)
}
console.log('\nlive (full GC before each sample: what the export holds)')
console.log('lead               rows   doc MB          job heap↑ MB  rss↑ MB          GET heap↑ MB  rss↑ MB')
for (const r of live) {
  console.log(`${r.lead.padEnd(16)}${String(r.rows).padStart(7)}${f(r.mb)}         ${f(r.job.heap)}${f(r.job.rss)}         ${f(r.get.heap)}${f(r.get.rss)}`)
}
const peak = (r: Row) => Math.max(r.job.heap, r.get.heap)
const s = live.find((r) => r.lead === 'small')!
const l = live.find((r) => r.lead.startsWith('large'))!
const ts = timed.find((r) => r.lead === 'small')!
const tl = timed.find((r) => r.lead.startsWith('large'))!
console.log(`\nlarge/small: ${(l.rows / s.rows).toFixed(1)}× the rows, ${(l.mb / s.mb).toFixed(1)}× the document, ` +
  `${(tl.job.ms / ts.job.ms).toFixed(1)}× the job time, ${(tl.get.ms / ts.get.ms).toFixed(1)}× the GET time; ` +
  `live peak heap ${peak(l).toFixed(1)} MB vs ${peak(s).toFixed(1)} MB (document ${l.mb.toFixed(1)} MB)`)
// Streaming holds one piece (64 KiB) and one cursor batch (500 rows) at a time: the heavy lead's live peak must stay
// within a few MB of the small one's, and far below its document's size.
const streams = peak(l) < peak(s) + 4 && peak(l) < l.mb / 4
console.log(streams ? 'PASS: memory does not grow with the size of the lead' : 'FAIL: memory grew with the size of the lead')
await db.close()
process.exit(streams ? 0 : 1)
