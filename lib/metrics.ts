import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

/**
 * Every metric the product exports, in one registry per process (`npm start` runs all services in one process, so
 * its /metrics shows all of them; run separately, each shows its own). Call sites use one line:
 * `metrics.whatsappDeliveries.inc({ outcome: 'acknowledged' })`. Labels are closed sets (route patterns, never raw
 * URLs; Meta error codes; task names): nothing about a person ever becomes a label.
 */
export const registry = new Registry()

let processMetrics = false
/** CPU, memory, event-loop lag and GC of this process; enabled by whoever serves /metrics, once. */
export function enableProcessMetrics(): void {
  if (processMetrics) return
  processMetrics = true
  collectDefaultMetrics({ register: registry })
}

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500]

export const httpRequests = new Counter({
  name: 'http_requests_total',
  help: 'HTTP requests answered, by service, method, route pattern (unmatched: "(unmatched)") and status code.',
  labelNames: ['service', 'method', 'route', 'status'] as const,
  registers: [registry],
})

export const httpRequestDuration = new Histogram({
  name: 'http_request_duration_seconds',
  help: 'Time from receiving a request to finishing its answer, by service, method, route pattern and status code.',
  labelNames: ['service', 'method', 'route', 'status'] as const,
  buckets: DURATION_BUCKETS,
  registers: [registry],
})

/**
 * The WhatsApp webhook pipeline. acknowledged: answered 200 to Meta (new or duplicate); stored: a new delivery row;
 * duplicate: a redelivery of bytes already stored; processed: applied by the worker; parked: given up on after the
 * last retry (an operator replays it). Quarantined items are a gauge (whatsapp_quarantined_items), read at scrape.
 */
export const whatsappDeliveries = new Counter({
  name: 'whatsapp_deliveries_total',
  help: 'WhatsApp webhook deliveries by outcome: acknowledged, stored, duplicate (webhooks service); processed, parked (worker).',
  labelNames: ['outcome'] as const,
  registers: [registry],
})

/** The public lead-form pipeline, with the outcomes of WhatsApp deliveries (no duplicates: each submission gets a new id). */
export const formSubmissions = new Counter({
  name: 'form_submissions_total',
  help: 'Public form submissions by outcome: acknowledged, stored, dropped (a honeypot hit: answered, not stored) (webhooks service); processed, parked (worker).',
  labelNames: ['outcome'] as const,
  registers: [registry],
})

export const groupCommitBatchSize = new Histogram({
  name: 'group_commit_batch_size',
  help: 'Items written by one group-commit flush, by inbox (delivery: WhatsApp webhooks; submission: lead forms; draft: campaign autosaves).',
  labelNames: ['inbox'] as const,
  buckets: BATCH_BUCKETS,
  registers: [registry],
})

export const whatsappSends = new Counter({
  name: 'whatsapp_sends_total',
  help: "Outbound Graph API send attempts by outcome (accepted, failed, retry, in_doubt) and Meta's error code (none when accepted or not Meta's answer).",
  labelNames: ['outcome', 'code'] as const,
  registers: [registry],
})

/** One line at a send call site: the outcome and Meta's error code, if any. */
export const countSend = (outcome: 'accepted' | 'failed' | 'retry' | 'in_doubt', code: number | null = null) =>
  whatsappSends.inc({ outcome, code: code === null ? 'none' : String(code) })

/** One line in the webhook route, after the delivery is committed: acknowledged, and either stored or a duplicate. */
export function countDeliveryAcknowledged(duplicate: boolean): void {
  whatsappDeliveries.inc({ outcome: 'acknowledged' })
  whatsappDeliveries.inc({ outcome: duplicate ? 'duplicate' : 'stored' })
}

/** One line in the form route: acknowledged, and either stored or dropped (a honeypot hit is answered, not kept). */
export function countSubmissionAcknowledged(stored: boolean): void {
  formSubmissions.inc({ outcome: 'acknowledged' })
  formSubmissions.inc({ outcome: stored ? 'stored' : 'dropped' })
}

// ---------------------------------------------------------------------------------------------------------
// Read at scrape time from the database, by the process that registers a source (the worker). A failing source
// leaves the gauges empty for that scrape rather than failing the whole /metrics answer.

export interface QueueStat {
  task: string
  /** ready: due and not locked; scheduled: due later; running: locked by a worker; failed: out of attempts. */
  state: 'ready' | 'scheduled' | 'running' | 'failed'
  jobs: number
  /** Seconds the oldest due, unlocked job has waited past its run_at (ready only; 0 otherwise). */
  oldestAgeSeconds: number
}

export interface ScrapeSources {
  queue?: () => Promise<QueueStat[]>
  /** Open (unreleased) quarantined WhatsApp items and parked deliveries, platform-wide. */
  whatsappBacklog?: () => Promise<{ quarantinedItems: number; parkedDeliveries: number }>
  /**
   * The analytics rollups, platform-wide: the watermark's lag behind now, dirty buckets waiting, and the events by
   * which clean rolled-up buckets of a recent window differ from raw (0 when exact).
   */
  analyticsRollup?: () => Promise<{ lagSeconds: number; dirtyBuckets: number; difference: number }>
}

const sources: ScrapeSources = {}

/** The worker calls this once with functions that query its database. */
export function useScrapeSources(given: ScrapeSources): void {
  Object.assign(sources, given)
}

export const scrapeSourceFailures = new Counter({
  name: 'metrics_scrape_source_failures_total',
  help: 'Scrape-time database reads that failed (their gauges are left out of that scrape), by source.',
  labelNames: ['source'] as const,
  registers: [registry],
})

async function safely<T>(source: keyof ScrapeSources, fn: (() => Promise<T>) | undefined): Promise<T | null> {
  if (!fn) return null
  try {
    return await fn()
  } catch {
    scrapeSourceFailures.inc({ source })
    return null
  }
}

let queueRead: Promise<QueueStat[] | null> | null = null
/** Both queue gauges are filled by one query per scrape. */
function readQueue(): Promise<QueueStat[] | null> {
  queueRead ??= safely('queue', sources.queue).finally(() => setImmediate(() => (queueRead = null)))
  return queueRead
}

export const queueJobs = new Gauge({
  name: 'worker_queue_jobs',
  help: 'graphile-worker jobs by task and state (ready, scheduled, running, failed), at scrape time.',
  labelNames: ['task', 'state'] as const,
  registers: [registry],
  async collect() {
    this.reset()
    for (const s of (await readQueue()) ?? []) this.set({ task: s.task, state: s.state }, s.jobs)
  },
})

export const queueOldestJobAge = new Gauge({
  name: 'worker_queue_oldest_job_age_seconds',
  help: 'Seconds the oldest due, unlocked job of each task has waited past its run_at, at scrape time.',
  labelNames: ['task'] as const,
  registers: [registry],
  async collect() {
    this.reset()
    for (const s of (await readQueue()) ?? []) if (s.state === 'ready') this.set({ task: s.task }, s.oldestAgeSeconds)
  },
})

let backlogRead: Promise<{ quarantinedItems: number; parkedDeliveries: number } | null> | null = null
function readBacklog() {
  backlogRead ??= safely('whatsappBacklog', sources.whatsappBacklog).finally(() => setImmediate(() => (backlogRead = null)))
  return backlogRead
}

export const whatsappQuarantinedItems = new Gauge({
  name: 'whatsapp_quarantined_items',
  help: 'WhatsApp delivery items held in quarantine (unknown number or account, invalid, refused) and not released, at scrape time.',
  registers: [registry],
  async collect() {
    const b = await readBacklog()
    if (b) this.set(b.quarantinedItems)
  },
})

export const whatsappParkedDeliveries = new Gauge({
  name: 'whatsapp_parked_deliveries',
  help: 'WhatsApp deliveries parked after their last retry, waiting for an operator, at scrape time.',
  registers: [registry],
  async collect() {
    const b = await readBacklog()
    if (b) this.set(b.parkedDeliveries)
  },
})

// The reconciliation counts a window of raw events: once a minute is plenty for a gauge, and scrapes every few
// seconds must not each pay for it.
const ROLLUP_READ_EVERY_MS = 60_000
let rollupRead: { at: number; value: Promise<{ lagSeconds: number; dirtyBuckets: number; difference: number } | null> } | null = null
function readRollup() {
  if (!rollupRead || Date.now() - rollupRead.at >= ROLLUP_READ_EVERY_MS) {
    const value = safely('analyticsRollup', sources.analyticsRollup)
    rollupRead = { at: Date.now(), value }
    // A failed read is not kept: the next scrape tries again.
    void value.then((v) => { if (v === null && rollupRead?.value === value) rollupRead = null })
  }
  return rollupRead.value
}

export const analyticsRollupDifference = new Gauge({
  name: 'analytics_rollup_difference_events',
  help: 'Events by which rolled-up analytics buckets (closed, clean, in the last ANALYTICS_RECONCILE_WINDOW_MINUTES) differ from raw events; 0 when exact. Read at most once a minute.',
  registers: [registry],
  async collect() {
    const r = await readRollup()
    if (r) this.set(r.difference)
  },
})

export const analyticsRollupLag = new Gauge({
  name: 'analytics_rollup_watermark_lag_seconds',
  help: 'Seconds between now and the oldest analytics bucket not rolled up yet (the open 5-minute bucket counts: up to 300 when all is well).',
  registers: [registry],
  async collect() {
    const r = await readRollup()
    if (r) this.set(r.lagSeconds)
  },
})

export const analyticsRollupDirtyBuckets = new Gauge({
  name: 'analytics_rollup_dirty_buckets',
  help: 'Analytics (tenant, 5-minute bucket) pairs marked dirty and waiting for the roll-up, the open buckets included.',
  registers: [registry],
  async collect() {
    const r = await readRollup()
    if (r) this.set(r.dirtyBuckets)
  },
})

export const metricsContentType = registry.contentType
export const renderMetrics = () => registry.metrics()

/** The live feed (GET /v1/analytics/live): streams open now, and streams ended by us (slow: cut off for backpressure). */
export const liveStreams = new Gauge({
  name: 'analytics_live_streams',
  help: 'Live feed (SSE) streams open in this process.',
  registers: [registry],
})
export const liveStreamsDropped = new Counter({
  name: 'analytics_live_streams_dropped_total',
  help: 'Live feed streams the server ended, by reason: slow (the client did not read and its buffer passed LIVE_MAX_BUFFERED_BYTES).',
  labelNames: ['reason'] as const,
  registers: [registry],
})

/**
 * Visits of partner links (GET /l/<code>) by outcome: web, whatsapp (redirected), inactive (a known link that is off:
 * 404, also stored as a click), unknown (no such code: 404; no tenant to store it under, so counted here only).
 */
export const linkVisits = new Counter({
  name: 'partner_link_visits_total',
  help: 'Partner link visits by outcome: web, whatsapp, inactive, unknown.',
  labelNames: ['outcome'] as const,
  registers: [registry],
})
