/**
 * PostHog forwarding throughput (domains/analytics/posthog), against a baseline in the same run, on loopback.
 *
 * - forward: the drain as the worker runs it (forwardDue): lock a batch of outbox rows, read their events, build the
 *   messages (pseudonyms, allow-list), posthog-node's capture + flush (JSON, gzip, POST /batch/), delete the rows.
 * - baseline: the same events as the same /batch/ bodies (same batch size, gzipped the same way), posted straight
 *   with fetch to the same emulator, with no database and no client library: the least forwarding can cost.
 * Rounds alternate (forward, baseline, forward, …) so load elsewhere on the machine hits both alike; best round.
 *
 * Also: what the outbox trigger costs ingestion, recording the same batches for a tenant that opted in and one that
 * did not.
 *
 * Environment: BENCH_EVENTS (20,000, at most 200,000), BENCH_BATCH (500), BENCH_ROUNDS (3, at most 5),
 * BENCH_CONCURRENCY (2: the drain's default lanes, POSTHOG_DRAIN_CONCURRENCY), BENCH_LATENCY_MS (50: PostHog's answer
 * delay for the lanes comparison, as across the internet).
 */
import { gzipSync } from 'node:zlib'
import { Pseudonyms } from '../../lib/crypto.js'
import { withTenant } from '../../lib/db.js'
import { recordEvents } from '../../domains/analytics/service.js'
import { forwardDue, type ForwardOptions, type PosthogMessage } from '../../domains/analytics/posthog/forward.js'
import { putPosthogSettings } from '../../domains/analytics/posthog/settings.js'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { parseConfig } from '../../lib/config.js'
import { startPosthogEmulator } from '../emulators/posthog.js'
import { startBenchDatabase } from './harness.js'

const EVENTS = Math.min(Number(process.env.BENCH_EVENTS ?? 20_000), 200_000)
const BATCH = Math.min(Number(process.env.BENCH_BATCH ?? 500), 1000)
const ROUNDS = Math.min(Number(process.env.BENCH_ROUNDS ?? 3), 5)
const CONCURRENCY = Math.min(Number(process.env.BENCH_CONCURRENCY ?? 2), 8)
const LATENCY_MS = Math.min(Number(process.env.BENCH_LATENCY_MS ?? 50), 500)
const API_KEY = 'phc_bench'

const db = await startBenchDatabase()
const posthog = await startPosthogEmulator({ apiKeys: [API_KEY] })
try {
  const config = parseConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent' })
  const tenantOf = async (slug: string) => (await createTenantWithFirstKey(db.sql, { name: slug, slug, defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'bench' })).tenant.id
  const forwarded = await tenantOf('bench-forwarded')
  const plain = await tenantOf('bench-plain')
  await putPosthogSettings(db.sql, config, { tenantId: forwarded, actor: 'bench', requestId: null }, { enabled: true })

  const rowsFor = (offset: number, n: number) => Array.from({ length: n }, (_, i) => ({
    name: ['whatsapp.message_received', 'form.submitted', 'lead.created', 'bot.conversation_started'][(offset + i) % 4]!,
    occurredAt: new Date(Date.now() - (offset + i) * 1000),
    source: 'whatsapp',
    anonymousId: `anon-${(offset + i) % 5000}`,
    properties: { formId: `form-${i % 20}`, flowId: `flow-${i % 7}`, text: 'a message that is never forwarded', campaignId: `c${i % 3}` },
  }))

  // Ingestion with and without the outbox trigger's rows, same batches, alternating.
  const ingest = { forwarded: Infinity, plain: Infinity }
  for (let round = 0; round < ROUNDS; round++) {
    for (const [label, tenantId] of [['forwarded', forwarded], ['plain', plain]] as const) {
      const started = performance.now()
      for (let i = 0; i < EVENTS; i += 1000) await withTenant(db.sql, tenantId, (tx) => recordEvents(tx, rowsFor(i, Math.min(1000, EVENTS - i))))
      ingest[label] = Math.min(ingest[label], performance.now() - started)
      if (label === 'forwarded' && round < ROUNDS - 1) await db.owner`delete from analytics.posthog_outbox`
    }
  }
  await db.owner`delete from analytics.events where tenant_id = ${plain}`
  // One round's events stay, with their outbox rows: what the drain forwards.
  await db.owner`
    delete from analytics.events e where tenant_id = ${forwarded}
       and not exists (select 1 from analytics.posthog_outbox o where o.tenant_id = e.tenant_id and o.event_id = e.id)`
  const [{ outboxRows }] = await db.owner<{ outboxRows: number }[]>`select count(*)::int as outbox_rows from analytics.posthog_outbox` as unknown as [{ outboxRows: number }]
  if (outboxRows !== EVENTS) throw new Error(`expected ${EVENTS} outbox rows, found ${outboxRows}`)

  const options: ForwardOptions = {
    apiKey: API_KEY, host: posthog.url, pseudonyms: Pseudonyms.fromConfig(undefined), batchSize: BATCH, maxAttempts: 3,
    retryBaseMs: 1000, retryMaxMs: 1000, requestTimeoutMs: 10_000, concurrency: CONCURRENCY,
  }
  // The baseline's bodies: the messages the drain sends, as /batch/ documents, built before the clock starts.
  let captured: PosthogMessage[][] = []
  const refill = () => db.owner`
    insert into analytics.posthog_outbox (tenant_id, event_id, occurred_at)
    select tenant_id, id, occurred_at from analytics.events where tenant_id = ${forwarded} on conflict do nothing`

  const results = { forward: Infinity, baseline: Infinity }
  for (let round = 0; round < ROUNDS; round++) {
    posthog.reset()
    let started = performance.now()
    const r = await forwardDue(db.sql, options, 120_000)
    results.forward = Math.min(results.forward, performance.now() - started)
    if (r.sent !== EVENTS || posthog.events.length !== EVENTS) throw new Error(`forward sent ${r.sent}, PostHog stored ${posthog.events.length}, expected ${EVENTS}`)
    if (round === 0) {
      captured = []
      for (let i = 0; i < posthog.events.length; i += BATCH) {
        captured.push(posthog.events.slice(i, i + BATCH).map((e) => ({
          uuid: e.uuid!, event: e.event, distinctId: e.distinctId, timestamp: new Date(e.timestamp!), properties: e.properties as PosthogMessage['properties'], groups: {},
        })))
      }
    }
    await refill()

    posthog.reset()
    started = performance.now()
    for (const batch of captured) {
      const body = gzipSync(JSON.stringify({
        api_key: API_KEY,
        batch: batch.map((m) => ({ event: m.event, distinct_id: m.distinctId, properties: m.properties, timestamp: m.timestamp.toISOString(), uuid: m.uuid })),
        sent_at: new Date().toISOString(),
      }))
      const res = await fetch(`${posthog.url}/batch/`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body })
      if (res.status !== 200) throw new Error(`baseline got ${res.status}`)
      await res.arrayBuffer()
    }
    results.baseline = Math.min(results.baseline, performance.now() - started)
    if (posthog.events.length !== EVENTS) throw new Error(`baseline stored ${posthog.events.length}`)
  }

  // PostHog across the internet: every answer LATENCY_MS late. Lanes overlap the waits; one lane waits for each.
  const latency: Record<number, number> = {}
  for (const lanes of [1, CONCURRENCY > 1 ? CONCURRENCY : 2]) {
    posthog.reset()
    posthog.setLatency(LATENCY_MS)
    const started = performance.now()
    const r = await forwardDue(db.sql, { ...options, concurrency: lanes }, 120_000)
    latency[lanes] = performance.now() - started
    if (r.sent !== EVENTS) throw new Error(`with latency, forward sent ${r.sent}`)
    await refill()
  }
  posthog.setLatency(0)

  const perSecond = (ms: number) => Math.round(EVENTS / (ms / 1000))
  const row = (name: string, ms: number, base: number) => `| ${name} | ${perSecond(ms).toLocaleString('en')} | ${(ms / 1000).toFixed(2)} | ${(base / ms).toFixed(2)}× |`
  console.log(`\nPostHog forwarding: ${EVENTS.toLocaleString('en')} events, batches of ${BATCH}, ${CONCURRENCY} lanes, best of ${ROUNDS} rounds (loopback emulator)\n`)
  console.log('| path | events/s | seconds | vs baseline |')
  console.log('| --- | ---: | ---: | ---: |')
  console.log(row('fetch POST /batch/, same gzipped bodies (baseline)', results.baseline, results.baseline))
  console.log(row('forwardDue: outbox → posthog-node → /batch/ → delete', results.forward, results.baseline))
  console.log(`\nratio forward/baseline: ${(results.baseline / results.forward).toFixed(2)}`)
  const lanesUsed = Object.keys(latency).map(Number)
  console.log(`\nWith PostHog answering ${LATENCY_MS} ms late (one round each):\n`)
  console.log('| lanes | events/s | vs 1 lane |')
  console.log('| --- | ---: | ---: |')
  for (const lanes of lanesUsed) console.log(`| ${lanes} | ${perSecond(latency[lanes]!).toLocaleString('en')} | ${(latency[1]! / latency[lanes]!).toFixed(2)}× |`)
  console.log(`\nIngestion (recordEvents, batches of 1,000), the outbox trigger's cost:\n`)
  console.log('| tenant | events/s | vs not opted in |')
  console.log('| --- | ---: | ---: |')
  console.log(`| not opted in (no outbox rows) | ${perSecond(ingest.plain).toLocaleString('en')} | 1.00× |`)
  console.log(`| opted in (one outbox row per event, same statement) | ${perSecond(ingest.forwarded).toLocaleString('en')} | ${(ingest.plain / ingest.forwarded).toFixed(2)}× |`)
} finally {
  await posthog.stop()
  await db.close()
}
