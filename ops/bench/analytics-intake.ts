/**
 * Event intake end to end, against a raw COPY of the same rows into the same table, in one run (loopback, bounded).
 *
 * Baseline: `COPY analytics.events (...) FROM STDIN` of BENCH_EVENTS rows, exactly the rows the pipeline stores
 * (every column, the enrichment already computed), timed until committed; then the table is emptied again.
 * Ours: the webhooks service (its own process, services/webhooks/main.ts) and a worker (services/workers/main.ts),
 * as in production; BENCH_SENDERS concurrent clients POST /v1/events with batches of 100 events (an admin API key)
 * over keep-alive HTTP; the clock runs from the first request until the last event is in analytics.events (every
 * request answered 202, the inbox empty, the count checked). The group commit records events straight into
 * analytics.events, so the last 202 is normally the end; the inbox (and the worker) only take requests PostgreSQL
 * refused. Events/s for both and the ratio; targets ≥ 0.3× COPY
 * and ≥ 20,000 events/s.
 *
 * Checks: every event stored exactly once (count of analytics.events = BENCH_EVENTS = count of event keys), none
 * parked, every one enriched.
 *
 * Environment: BENCH_EVENTS (default 200,000, at most 1,000,000), BENCH_SENDERS (16), WORKER_CONCURRENCY (4),
 * BENCH_DATABASE_URL (else an embedded PostgreSQL in a temp folder).
 */
import { randomUUID } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import os from 'node:os'
import { enrichEvent } from '../../domains/analytics/enrichment/enrich.js'
import { enrichmentInputOf } from '../../domains/analytics/service.js'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { freePort } from '../../test/free-port.js'
import { isReady, startEntry, waitFor, type Started } from '../../test/processes.js'
import { startBenchDatabase } from './harness.js'

const EVENTS = Math.min(Math.max(Number(process.env.BENCH_EVENTS ?? 200_000), 1000), 1_000_000)
const SENDERS = Math.min(Number(process.env.BENCH_SENDERS ?? 16), 128)
const CONCURRENCY = Math.min(Number(process.env.WORKER_CONCURRENCY ?? 4), 32)
const BATCH = 100

const db = await startBenchDatabase({ poolMax: 8 })
const { tenant, apiKey } = await createTenantWithFirstKey(db.sql, { name: 'Bench', slug: 'bench', defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'k' })

// A realistic mix: browsers on phones and desktops, in-app browsers, a bot; referrers of every channel; UTM; locales.
const agents = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 305.0.0.22.109 (iPhone14,5; iOS 16_6; pt_BR; pt; scale=3.00; 1170x2532; 532277904)',
  'Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/442.0.0.33.113;]',
  'Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
]
const referrers = ['', 'https://www.google.com.br/', 'https://l.instagram.com/', 'https://l.facebook.com/', 'https://mail.google.com/', 'https://blog.somebody.net/post/1']
const queries = ['', '?utm_source=instagram&utm_medium=paid_social&utm_campaign=verao', '?gclid=Cj0KCQiA', '?utm_source=newsletter&utm_medium=email']
const names = ['page', 'pricing.viewed', 'Signup clicked', 'whatsapp.cta_clicked']

// Over the last hour, so every event lands in today's (or yesterday's) partition, both made ahead.
const start = Date.now() - 3_600_000
const events = Array.from({ length: EVENTS }, (_, i) => {
  const path = `/produto/${i % 50}`
  return {
    id: randomUUID(),
    name: names[i % names.length]!,
    type: i % names.length === 0 ? 'page' : 'track',
    occurredAt: new Date(start + Math.floor((i * 3_000_000) / EVENTS)).toISOString(),
    anonymousId: `anon-${i % 20_000}`,
    sessionId: `s-${i % 5_000}`,
    properties: { plan: i % 2 ? 'pro' : 'basic', step: i % 7 },
    context: {
      page: { url: `https://loja.example.com.br${path}${queries[i % queries.length]}`, path, title: 'Loja', referrer: referrers[(i * 7) % referrers.length] },
      userAgent: agents[i % agents.length],
      locale: i % 3 ? 'pt-BR' : 'en-US',
    },
  }
})
const bodies = Array.from({ length: EVENTS / BATCH }, (_, b) => JSON.stringify({ events: events.slice(b * BATCH, (b + 1) * BATCH) }))

// ---------------------------------------------------------------------------------------------------------------
// Where the CPU goes (Linux /proc; nothing elsewhere): two cores are shared by this client, the services and
// PostgreSQL, so the rate is bounded by their sum. Seconds of CPU, in clock ticks of 10 ms.

const TICK = 0.01
/** utime + stime of a process, and with `children` also cutime + cstime (its exited children: closed backends). */
const cpuOf = (pid: number, children = false): number => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0)) * TICK
  } catch {
    return 0
  }
}
const parentOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1])
/** Every process of the PostgreSQL cluster: the postmaster (with its exited children) and its live children. */
const clusterCpu = (postmaster: number): number => {
  let total = cpuOf(postmaster, true)
  for (const d of readdirSync('/proc')) {
    const pid = Number(d)
    if (pid > 0) try { if (parentOf(pid) === postmaster) total += cpuOf(pid) } catch { /* gone meanwhile */ }
  }
  return total
}
const hasProc = (() => { try { return readFileSync('/proc/self/stat', 'utf8').length > 0 } catch { return false } })()
const postmaster = hasProc
  ? await db.owner<{ pid: number }[]>`select pid from pg_stat_activity where backend_type = 'checkpointer'`.then((r) => (r[0] ? parentOf(r[0].pid) : null)).catch(() => null)
  : null

// ---------------------------------------------------------------------------------------------------------------
// Baseline: COPY of the same rows (as the worker stores them) into the same table.

const copyColumns = ['tenant_id', 'name', 'occurred_at', 'properties', 'dedupe_key', 'source', 'event_id', 'type', 'anonymous_id', 'session_id', 'context',
  'acq_source', 'acq_channel', 'referrer_host', 'utm', 'click_id', 'device', 'browser', 'browser_version', 'os', 'os_version', 'is_bot', 'country', 'country_from']
/** COPY's text format: tab-separated, \N for null, backslash, tab and newline escaped. */
const cell = (v: unknown) => (v === null || v === undefined ? '\\N' : (typeof v === 'object' ? JSON.stringify(v) : String(v)).replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n'))
const copyLines = events.map((e) => {
  const x = enrichEvent(enrichmentInputOf(e.context, undefined))
  return [tenant.id, e.name, e.occurredAt, e.properties, `evt:${e.id}`, 'api', e.id, e.type, e.anonymousId, e.sessionId, e.context,
    x.source, x.channel, x.referrerHost, x.utm, x.clickId, x.device, x.browser.name, x.browser.version, x.os.name, x.os.version, x.isBot, x.country?.code, x.country?.from]
    .map(cell).join('\t') + '\n'
})

console.log(`\nAnalytics intake: ${EVENTS.toLocaleString('en-US')} events, batches of ${BATCH}, ${SENDERS} senders, worker concurrency ${CONCURRENCY}\n`)
const copyCpu0 = postmaster ? clusterCpu(postmaster) : 0
const copyStarted = performance.now()
await db.owner.begin(async (tx) => {
  const writable = await tx.unsafe(`copy analytics.events (${copyColumns.join(', ')}) from stdin`).writable()
  await new Promise<void>((resolve, reject) => {
    writable.on('error', reject)
    writable.on('finish', resolve)
    let i = 0
    const pump = () => {
      while (i < copyLines.length) {
        // 1,000 lines per write: fewer chunks, the same bytes.
        const ok = writable.write(copyLines.slice(i, i + 1000).join(''))
        i += 1000
        if (!ok) return void writable.once('drain', pump)
      }
      writable.end()
    }
    pump()
  })
})
const copySeconds = (performance.now() - copyStarted) / 1000
const copyPgCpu = postmaster ? clusterCpu(postmaster) - copyCpu0 : 0
const [copied] = await db.owner<{ n: number }[]>`select count(*)::int as n from analytics.events`
if (copied!.n !== EVENTS) throw new Error(`COPY stored ${copied!.n} rows, not ${EVENTS}`)
await db.owner`truncate analytics.events`
await db.owner`vacuum analyze analytics.events`

// ---------------------------------------------------------------------------------------------------------------
// Ours: the services as processes, over HTTP, until stored.

const port = await freePort()
const base = `http://127.0.0.1:${port}`
const env = {
  DATABASE_URL: db.ownerUrl, DATABASE_RUNTIME_URL: db.runtimeUrl, AUTO_MIGRATE: 'false', AUTO_SEED: 'false', LOG_LEVEL: 'warn',
  WEBHOOKS_PORT: String(port), METRICS_PORT: '0', WORKER_CONCURRENCY: String(CONCURRENCY), WORKER_POLL_INTERVAL_MS: '100',
  // e.g. BENCH_NODE_OPTIONS='--import /path/to/profiler.mjs' to profile the services (Node 20 refuses --cpu-prof in
  // NODE_OPTIONS; a preload that starts node:inspector's Profiler and writes the profile on SIGINT works).
  ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
}
const processes: Started[] = []
try {
  const webhooks = startEntry('services/webhooks/main.ts', env)
  processes.push(webhooks)
  await waitFor(() => isReady(base), 60_000, 'the webhooks service').catch((err) => { console.error(webhooks.output()); throw err })
  const worker = startEntry('services/workers/main.ts', env)
  processes.push(worker)
  // The worker is up when it beats.
  await waitFor(async () => (await db.owner`select 1 from ops.worker_heartbeats where beat_at > now() - interval '5 seconds'`).length > 0, 60_000, 'the worker')

  const headers = { 'content-type': 'application/json', authorization: `Bearer ${apiKey.key}` }
  let next = 0
  let accepted = 0
  const failures: string[] = []
  const cpu0 = { webhooks: cpuOf(webhooks.child.pid!), worker: cpuOf(worker.child.pid!), client: process.cpuUsage(), pg: postmaster ? clusterCpu(postmaster) : 0 }
  const started = performance.now()
  await Promise.all(Array.from({ length: SENDERS }, async () => {
    while (next < bodies.length) {
      const body = bodies[next++]!
      // Node's fetch keeps connections alive: each sender reuses its own.
      const res = await fetch(`${base}/v1/events`, { method: 'POST', headers, body })
      const text = await res.text()
      if (res.status === 202) accepted += (JSON.parse(text) as { accepted: number }).accepted
      else if (failures.length < 5) failures.push(`${res.status} ${text.slice(0, 200)}`)
    }
  }))
  const answeredSeconds = (performance.now() - started) / 1000
  if (failures.length > 0) throw new Error(`requests failed: ${failures.join(' | ')}`)
  // Stored once the inbox holds nothing waiting (a moved event leaves it in the transaction that stores it).
  for (;;) {
    const [left] = await db.owner<{ n: number }[]>`select count(*)::int as n from analytics.event_inbox where status = 'received'`
    if (left!.n === 0) break
    if (performance.now() - started > 300_000) throw new Error(`${left!.n} events still waiting after 5 minutes`)
    await new Promise((r) => setTimeout(r, 20))
  }
  const oursSeconds = (performance.now() - started) / 1000
  const clientCpu = process.cpuUsage(cpu0.client)
  const cpu = {
    webhooks: cpuOf(webhooks.child.pid!) - cpu0.webhooks, worker: cpuOf(worker.child.pid!) - cpu0.worker,
    client: (clientCpu.user + clientCpu.system) / 1e6, pg: postmaster ? clusterCpu(postmaster) - cpu0.pg : 0,
  }

  const [check] = await db.owner<{ events: number; keys: number; parked: number; enriched: number }[]>`
    select (select count(*)::int from analytics.events) as events, (select count(*)::int from analytics.event_keys) as keys,
           (select count(*)::int from analytics.event_inbox) as parked,
           (select count(*)::int from analytics.events where device is not null and acq_channel is not null) as enriched`
  const copyRate = EVENTS / copySeconds
  const oursRate = EVENTS / oursSeconds
  const rows = [
    ['raw COPY (baseline)', copySeconds.toFixed(2), Math.round(copyRate).toLocaleString('en-US'), '1.00×'],
    ['POST /v1/events → analytics.events', oursSeconds.toFixed(2), Math.round(oursRate).toLocaleString('en-US'), `${(oursRate / copyRate).toFixed(2)}×`],
  ]
  const header = ['', 'seconds', 'events/s', 'vs COPY']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  console.log(line(header))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const r of rows) console.log(line(r))
  console.log(`\nall ${bodies.length} requests answered 202 after ${answeredSeconds.toFixed(2)} s (${Math.round(EVENTS / answeredSeconds).toLocaleString('en-US')} events/s acknowledged)`)
  console.log(`check: ${accepted} accepted, ${check!.events} stored, ${check!.keys} dedupe keys, ${check!.parked} parked, ${check!.enriched} enriched` +
    (accepted === EVENTS && check!.events === EVENTS && check!.keys === EVENTS && check!.parked === 0 && check!.enriched === EVENTS ? ' (every event stored once)' : ' MISMATCH'))
  if (postmaster) {
    const us = (seconds: number) => `${Math.round((seconds * 1e6) / EVENTS)} µs`
    console.log(`CPU per event: COPY ${us(copyPgCpu)} (PostgreSQL); ours ${us(cpu.webhooks + cpu.worker + cpu.client + cpu.pg)}: ` +
      `PostgreSQL ${us(cpu.pg)}${process.env.BENCH_DATABASE_URL ? ' (the whole cluster, other databases too)' : ''}, webhooks ${us(cpu.webhooks)}, ` +
      `worker ${us(cpu.worker)}, this client ${us(cpu.client)} (${os.availableParallelism()} cores)`)
  }
  console.log(`targets: ≥ 0.3× COPY ${oursRate / copyRate >= 0.3 ? 'met' : 'NOT met'}; ≥ 20,000 events/s ${oursRate >= 20_000 ? 'met' : 'NOT met'}`)
} finally {
  await Promise.all(processes.map((p) => p.stop()))
  await db.close()
}
process.exit(0)
