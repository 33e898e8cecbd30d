import { type Sql, withTenant } from '../../lib/db.js'
import type { Logger } from '../../lib/logger.js'
import { AssignBatches } from './assign-batches.js'
import { compileBucketing } from './hashing.js'
import * as q from './queries.js'

/** The channel migration 0051's triggers notify (payload: the tenant's id) on any change to experiments or phases. */
export const EXPERIMENTS_CHANGED_CHANNEL = 'experiments_changed'
const LISTEN_RETRY_MS = 5_000

/** A started experiment as held in memory: its phase in force and its bucketing compiled once. */
export type CachedExperiment = q.StartedExperiment & { bucket: (unitId: string) => number }

interface Entry { experiments: CachedExperiment[]; expiresAt: number }

// Caches in this process by the pool they read through: a change this process commits drops the tenant's entry at
// once (forgetExperimentsLocally), before its NOTIFY comes back.
const localCaches = new WeakMap<Sql, Set<ExperimentDefinitions>>()

/** This process committed a change to the tenant's experiments: its caches on `sql` drop the tenant's definitions now. */
export function forgetExperimentsLocally(sql: Sql, tenantId: string): void {
  for (const cache of localCaches.get(sql) ?? []) cache.forgetTenant(tenantId)
}

/**
 * Each tenant's started experiments (definition, phase in force, weights, coverage, targeting, namespace), in
 * process, so that an assignment is decided in JS (hashing.ts) and the database is asked only about the unit
 * (experiments.unit_assignments) and, when something is new, to store it; both through `batches` (assign-batches.ts),
 * one statement for the requests that arrive together.
 *
 * - An entry lives at most `ttlMs`; a change to the tenant's experiments or phases drops it at once in the process that
 *   committed it and, elsewhere, when the NOTIFY of migration 0051's triggers arrives (LISTEN experiments_changed).
 * - Nothing is stored until the LISTEN is up, and everything is dropped each time it is (re)established; a load in
 *   flight during an invalidation does not store its answer; concurrent misses of one tenant share one load.
 * - Until a change has reached a process, that process may assign with the definition it held (as a request that read
 *   it a moment before the change would have); stored assignments win whatever the definition says, as always.
 */
export class ExperimentDefinitions {
  private readonly entries = new Map<string, Entry>()
  private readonly inflight = new Map<string, Promise<CachedExperiment[]>>()
  private readonly ttlMs: number
  private readonly maxTenants: number
  private generation = 0
  private listening = false
  private closed = false
  private unlisten: (() => Promise<void>) | null = null
  private starting: Promise<void> | null = null
  /** The assign route's reads and writes, shared by the requests that arrive together. */
  readonly batches: AssignBatches

  constructor(private readonly sql: Sql, private readonly log: Logger, options: { ttlMs: number; maxTenants?: number }) {
    this.batches = new AssignBatches(sql)
    this.ttlMs = options.ttlMs
    this.maxTenants = options.maxTenants ?? 10_000
    let set = localCaches.get(sql)
    if (!set) localCaches.set(sql, (set = new Set()))
    set.add(this)
  }

  get enabled(): boolean {
    return this.ttlMs > 0 && !this.closed
  }

  /** Starts listening for changes; resolves once the LISTEN is up (until then every call loads from the database). */
  start(): Promise<void> {
    if (this.ttlMs <= 0 || this.closed) return Promise.resolve()
    return (this.starting ??= this.listen())
  }

  private async listen(): Promise<void> {
    try {
      const l = await this.sql.listen(EXPERIMENTS_CHANGED_CHANNEL, (payload) => this.notified(payload), () => this.listened())
      if (this.closed) await l.unlisten().catch(() => {})
      else this.unlisten = l.unlisten
    } catch (err) {
      this.log.warn({ errCode: (err as { code?: string }).code ?? (err as Error).message }, 'experiment definitions: cannot listen for changes; not caching')
      if (!this.closed) setTimeout(() => void (this.starting = this.listen()), LISTEN_RETRY_MS).unref()
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.listening = false
    this.forgetAll()
    localCaches.get(this.sql)?.delete(this)
    // Not awaited: with the database gone an UNLISTEN would wait for a reconnection and hold up shutdown; ending the
    // pool closes the listening connection anyway.
    void this.starting?.then(() => this.unlisten?.().catch(() => {}))
  }

  /** The tenant's started experiments, by key. */
  async forTenant(tenantId: string): Promise<CachedExperiment[]> {
    const entry = this.entries.get(tenantId)
    if (entry) {
      if (entry.expiresAt > Date.now()) return entry.experiments
      this.entries.delete(tenantId)
    }
    const pending = this.inflight.get(tenantId)
    if (pending) return pending
    const generation = this.generation
    const load = withTenant(this.sql, tenantId, q.listStartedExperiments).then((rows) => {
      if (this.inflight.get(tenantId) === load) this.inflight.delete(tenantId)
      const experiments = rows.map(compile)
      if (this.listening && this.generation === generation) this.store(tenantId, experiments)
      return experiments
    }, (err: unknown) => {
      if (this.inflight.get(tenantId) === load) this.inflight.delete(tenantId)
      throw err
    })
    this.inflight.set(tenantId, load)
    return load
  }

  forgetTenant(tenantId: string): void {
    this.generation++
    this.inflight.delete(tenantId)
    this.entries.delete(tenantId)
  }

  forgetAll(): void {
    this.generation++
    this.inflight.clear()
    this.entries.clear()
  }

  private store(tenantId: string, experiments: CachedExperiment[]) {
    if (this.entries.size >= this.maxTenants) {
      const oldest = this.entries.keys().next()
      if (!oldest.done) this.entries.delete(oldest.value)
    }
    this.entries.set(tenantId, { experiments, expiresAt: Date.now() + this.ttlMs })
  }

  private listened() {
    if (this.closed) return
    this.forgetAll()
    this.listening = true
  }

  private notified(payload: string) {
    if (/^[0-9a-f-]{36}$/i.test(payload)) this.forgetTenant(payload.toLowerCase())
    else this.forgetAll()
  }
}

const compile = (e: q.StartedExperiment): CachedExperiment => ({
  ...e,
  bucket: compileBucketing({
    seed: e.seed, hashVersion: e.hashVersion, coverage: e.coverage, weights: e.variations.map((v) => v.weight),
    namespace: e.namespace && [e.namespace.id, e.namespace.start, e.namespace.end],
  }),
})
