/**
 * `npm run bench:analytics-live`: latency of the live feed from an event's commit to its arrival at SSE clients,
 * with C clients connected (target: p99 < 50 ms at 100), against a bare LISTEN client in the same run.
 *
 * The API service (the product's app, on loopback) serves GET /v1/analytics/live; C clients follow it over real HTTP
 * and parse the stream as a browser would. Events commit at a steady rate, one transaction each, through
 * recordEvents (the statement trigger of migration 0024 notifies the API's one LISTEN connection; the API reads the
 * rows under the tenant and fans them out). Each transaction also sends a notification of its own on another
 * channel to a bare LISTEN connection: that is PostgreSQL's notify round trip, the floor under any LISTEN-based
 * feed. Both are timed from the moment the COMMIT is sent to the moment the message is parsed, on a worker thread of
 * their own (a separate event loop, like a separate browser), so the ratio shows what the feed adds.
 *
 * Environment: BENCH_CLIENTS (100), BENCH_RATE (events/s, 200), BENCH_SECONDS (10), BENCH_PARTITION_DAYS (daily
 * partitions made for the past days, 90: what retention keeps), BENCH_DATABASE_URL (else embedded). Loopback only; bounded (at most 60 s of load).
 */
import { cpus, loadavg } from 'node:os'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import postgres from 'postgres'

interface ClientsInput { url: string; key: string; clients: number; baselineUrl: string; baselineChannel: string }
interface ClientsOutput { live: [seq: number, at: string][]; baseline: [seq: number, at: string][]; ready: boolean }

if (!isMainThread) {
  await runClients(workerData as ClientsInput)
} else {
  await main()
}

/** The worker thread: C SSE clients and the bare LISTEN client; reports every arrival (seq, hrtime) when told. */
async function runClients(input: ClientsInput) {
  const { openSse } = await import('../../test/sse.js')
  const live: [number, string][] = []
  const baseline: [number, string][] = []
  const seqOf = /"benchSeq":(\d+)/
  const clients = await Promise.all(Array.from({ length: input.clients }, () =>
    openSse(input.url, { authorization: `Bearer ${input.key}` }, (m, at) => {
      const seq = seqOf.exec(m.data)
      if (seq) live.push([Number(seq[1]), at.toString()])
    })))
  if (clients.some((c) => c.status !== 200)) throw new Error(`a client got ${clients.find((c) => c.status !== 200)!.status}`)
  // Following once each has its first cursor (the subscription is in place).
  await Promise.all(clients.map((c) => c.waitFor(() => c.lastEventId !== '')))
  const listener = postgres(input.baselineUrl, { max: 1, onnotice: () => {} })
  await listener.listen(input.baselineChannel, (payload) => baseline.push([Number(payload), process.hrtime.bigint().toString()]))
  parentPort!.postMessage({ ready: true, live: [], baseline: [] } satisfies ClientsOutput)
  parentPort!.once('message', async () => {
    for (const c of clients) c.close()
    await listener.end({ timeout: 1 })
    parentPort!.postMessage({ ready: false, live, baseline } satisfies ClientsOutput)
  })
}

async function main() {
  const { parseConfig } = await import('../../lib/config.js')
  const { createSql, withTenant } = await import('../../lib/db.js')
  const { createLogger } = await import('../../lib/logger.js')
  const { readMigrationFiles } = await import('../../lib/migrate.js')
  const { recordEvents } = await import('../../domains/analytics/service.js')
  const { createTenantWithFirstKey } = await import('../../domains/tenancy/service.js')
  const { buildApiApp } = await import('../../services/api/app.js')
  const { startBenchDatabase } = await import('./harness.js')

  const CLIENTS = Math.min(1000, Number(process.env.BENCH_CLIENTS ?? 100))
  const RATE = Math.min(2000, Number(process.env.BENCH_RATE ?? 200))
  const SECONDS = Math.min(60, Number(process.env.BENCH_SECONDS ?? 10))
  const BASELINE_CHANNEL = 'bench_live_baseline'
  // Production keeps 90 days of daily partitions (migration 0021), and a live read probes each one's index.
  const PAST_DAYS = Math.min(400, Number(process.env.BENCH_PARTITION_DAYS ?? 90))

  const log = createLogger({ level: 'warn', service: 'bench' })
  const db = await startBenchDatabase({ poolMax: 20 })
  const config = parseConfig({ NODE_ENV: 'test', LOG_LEVEL: 'warn', LIVE_MAX_STREAMS_PER_TENANT: String(CLIENTS), API_RATE_LIMIT_PER_MINUTE: '100000' })
  await db.owner`select count(analytics.create_event_partition((current_date - d)::date)) from generate_series(1, ${PAST_DAYS}) d`
  const { tenant, apiKey } = await createTenantWithFirstKey(db.sql, { name: 'Bench live', slug: `bench-live-${Date.now() % 1e6}`, defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'bench' })
  const api = await buildApiApp({ config, sql: db.sql, log, migrations: await readMigrationFiles() })
  const base = await api.listen({ host: '127.0.0.1', port: 0 })

  // The worker runs this file too, through tsx's loader (a worker does not inherit it from the tsx CLI on Node 20).
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'))
  const self = JSON.stringify(import.meta.url)
  const worker = new Worker(`import(${tsx}).then(({ tsImport }) => tsImport(${self}, ${self}))`, {
    eval: true,
    workerData: { url: `${base}/v1/analytics/live`, key: apiKey.key, clients: CLIENTS, baselineUrl: db.runtimeUrl, baselineChannel: BASELINE_CHANNEL } satisfies ClientsInput,
  })
  const fromWorker = () => new Promise<ClientsOutput>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  await fromWorker()
  const partitions = await db.owner<{ n: number }[]>`select count(*)::int as n from pg_inherits where inhparent = 'analytics.events'::regclass`.then((r) => r[0]!.n)
  console.log(`${CLIENTS} SSE clients following; committing ${RATE} events/s for ${SECONDS} s; analytics.events has ${partitions} partitions`)

  // The writer is another process's pool in production (the worker, the webhooks service): here a pool of its own.
  const writer = createSql(db.runtimeUrl, { max: 10 })
  // Steady rate: commit i is due at start + i/RATE; each is its own transaction (several may be in flight).
  const committedAt = new Map<number, bigint>()
  const total = RATE * SECONDS
  const started = performance.now()
  const inFlight = new Set<Promise<unknown>>()
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / RATE
    const wait = due - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    const p = withTenant(writer, tenant.id, async (tx) => {
      await recordEvents(tx, [{ name: 'bench.live_event', occurredAt: new Date(), source: 'api', properties: { benchSeq: i } }])
      await tx`select pg_notify(${BASELINE_CHANNEL}, ${String(i)})`
      // Returning from the callback sends COMMIT: this is the commit's moment, as the writer sees it.
      committedAt.set(i, process.hrtime.bigint())
    }).finally(() => inFlight.delete(p))
    inFlight.add(p)
  }
  await Promise.all(inFlight)
  const elapsed = (performance.now() - started) / 1000
  // Let the last events arrive.
  await new Promise((r) => setTimeout(r, 1000))
  const done = fromWorker()
  worker.postMessage('stop')
  const result = await done
  await worker.terminate()
  await api.close()
  await writer.end({ timeout: 5 })
  await db.close()

  const latencies = (arrivals: [number, string][]) => arrivals.map(([seq, at]) => Number(BigInt(at) - committedAt.get(seq)!) / 1e6).sort((a, b) => a - b)
  const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN
  const live = latencies(result.live)
  const baseline = latencies(result.baseline)
  const rows = [
    { name: `live feed, ${CLIENTS} SSE clients`, xs: live, expected: total * CLIENTS },
    { name: 'bare LISTEN (pg notify round trip)', xs: baseline, expected: total },
  ]
  // Latency on a shared machine is mostly other processes' CPU: say how busy it was.
  console.log(`committed ${total} events in ${elapsed.toFixed(1)} s (${(total / elapsed).toFixed(0)}/s); load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs`)
  const header = ['target', 'received', 'p50 ms', 'p99 ms', 'max ms', 'p99 ratio']
  const table = rows.map((r) => [r.name, `${r.xs.length}/${r.expected}`, pct(r.xs, 50).toFixed(2), pct(r.xs, 99).toFixed(2), (r.xs.at(-1) ?? NaN).toFixed(2),
    `${(pct(r.xs, 99) / pct(baseline, 99)).toFixed(2)}× bare LISTEN`])
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')
  console.log(line(header))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const r of table) console.log(line(r))
  const p99 = pct(live, 99)
  const complete = live.length === total * CLIENTS
  console.log(`target p99 < 50 ms: ${p99 < 50 ? 'met' : 'NOT met'} (${p99.toFixed(2)} ms); every client got every event: ${complete ? 'yes' : 'NO'}`)
  process.exit(complete ? 0 : 1)
}
