import type { Config } from '../../../lib/config.js'
import type { Logger } from '../../../lib/logger.js'
import type { BenchDatabase } from '../harness.js'

/**
 * One part of `npm run bench:campaigns`. Each part lives in its own file in this folder and default-exports a
 * BenchSection; ops/bench/campaigns.ts finds them all (no list to edit), runs those BENCH_SECTIONS names (all by
 * default) one after another on one migrated database, and exits non-zero if a part says its target was missed.
 */
export interface BenchContext {
  db: BenchDatabase
  /** Parsed with the bench's defaults (rate limit off, warn logs); a part may parse its own with overrides. */
  config: Config
  log: Logger
  /** A tenant of the part's own, with an admin key. */
  tenant: () => Promise<{ tenantId: string; apiKey: string }>
}

export interface SectionResult {
  /** Lines to print under the part's heading (its table is printed by the part itself). */
  summary: string[]
  /** False when a target was missed (reported, and the process exits 1). */
  passed: boolean
}

export interface BenchSection {
  /** Short name, for BENCH_SECTIONS (e.g. draft-autosave, broadcast-send, performance-report). */
  name: string
  title: string
  run: (ctx: BenchContext) => Promise<SectionResult>
}

export const envInt = (name: string, fallback: number, max: number) => Math.min(Number(process.env[name] ?? fallback), max)
