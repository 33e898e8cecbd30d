import { type Sql, withTenant } from '../../lib/db.js'
import type { Logger } from '../../lib/logger.js'
import { NotifiedCache } from '../../lib/notified-cache.js'
import { AssignBatches } from './assign-batches.js'
import { compileBucketing } from './hashing.js'
import * as q from './queries.js'

/** The channel migration 0051's triggers notify (payload: the tenant's id) on any change to experiments or phases. */
export const EXPERIMENTS_CHANGED_CHANNEL = 'experiments_changed'

/** A started experiment as held in memory: its phase in force and its bucketing compiled once. */
export type CachedExperiment = q.StartedExperiment & { bucket: (unitId: string) => number }

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
 * - The rest is lib/notified-cache.ts: nothing stored until the LISTEN is up and everything dropped each time it is
 *   (re)established; a load in flight during an invalidation does not store its answer; concurrent misses of one tenant
 *   share one load.
 * - Until a change has reached a process, that process may assign with the definition it held (as a request that read
 *   it a moment before the change would have); stored assignments win whatever the definition says, as always.
 */
export class ExperimentDefinitions {
  private readonly cache: NotifiedCache<string, CachedExperiment[]>
  /** The assign route's reads and writes, shared by the requests that arrive together. */
  readonly batches: AssignBatches

  constructor(private readonly sql: Sql, log: Logger, options: { ttlMs: number; maxTenants?: number }) {
    this.batches = new AssignBatches(sql)
    this.cache = new NotifiedCache<string, CachedExperiment[]>(sql, log, {
      channel: EXPERIMENTS_CHANGED_CHANNEL, ttlMs: options.ttlMs, maxEntries: options.maxTenants ?? 10_000,
      listenFailedMessage: 'experiment definitions: cannot listen for changes; not caching',
      tenantOf: (tenantId) => tenantId,
      tenantOfKey: (tenantId) => tenantId,
    })
    let set = localCaches.get(sql)
    if (!set) localCaches.set(sql, (set = new Set()))
    set.add(this)
  }

  get enabled(): boolean {
    return this.cache.ttlMs > 0 && !this.cache.closed
  }

  /** Starts listening for changes; resolves once the LISTEN is up (until then every call loads from the database). */
  start(): Promise<void> {
    return this.cache.start()
  }

  async close(): Promise<void> {
    if (this.cache.closed) return
    await this.cache.close()
    localCaches.get(this.sql)?.delete(this)
  }

  /** The tenant's started experiments, by key. */
  forTenant(tenantId: string): Promise<CachedExperiment[]> {
    return this.cache.get(tenantId, () => withTenant(this.sql, tenantId, q.listStartedExperiments).then((rows) => rows.map(compile)))
  }

  forgetTenant(tenantId: string): void {
    this.cache.forgetTenant(tenantId)
  }

  forgetAll(): void {
    this.cache.forgetAll()
  }
}

const compile = (e: q.StartedExperiment): CachedExperiment => ({
  ...e,
  bucket: compileBucketing({
    seed: e.seed, hashVersion: e.hashVersion, coverage: e.coverage, weights: e.variations.map((v) => v.weight),
    namespace: e.namespace && [e.namespace.id, e.namespace.start, e.namespace.end],
  }),
})
