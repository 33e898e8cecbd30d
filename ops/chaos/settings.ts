import { z } from 'zod'

/**
 * Every knob of `npm run chaos`, from the environment (CHAOS_*). The defaults keep the whole run well under three
 * minutes on two cores even when every fault fails and every recovery wait runs out; each value is capped so a
 * typo cannot turn the drill into a load test.
 */
const int = (fallback: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(fallback)

export const ChaosSettings = z.object({
  // Items per second, per channel, while a phase's traffic runs (WhatsApp deliveries of one message each; forms).
  CHAOS_WHATSAPP_RATE: int(40, 1, 200),
  CHAOS_FORM_RATE: int(20, 1, 200),
  // Items go out in bursts of this size, so neighbours share the service's group commits as real traffic does.
  CHAOS_BURST: int(4, 1, 20),
  // Traffic before the fault, while it lasts (worker dead / database stopped), and after it.
  CHAOS_LEAD_IN_MS: int(2000, 0, 30_000),
  CHAOS_FAULT_MS: int(4000, 0, 30_000),
  CHAOS_TAIL_MS: int(2000, 0, 30_000),
  // After the traffic stops: how long every acknowledged item may take to be applied before it counts as lost.
  CHAOS_RECOVERY_TIMEOUT_MS: int(60_000, 1000, 600_000),
  // The whole run's budget: a phase's recovery wait is cut short so the phases after it still fit.
  CHAOS_MAX_RUN_MS: int(150_000, 10_000, 900_000),
  // Once everything is applied, wait this long and count again: a late redo would show up as a double.
  CHAOS_QUIET_MS: int(2000, 0, 60_000),
  // How long a child process may take to come up (tsx compiles on start; two busy cores are slow).
  CHAOS_START_TIMEOUT_MS: int(45_000, 1000, 300_000),
  CHAOS_REQUEST_TIMEOUT_MS: int(5000, 100, 60_000),
  // Fault (c): one item in this many is poisoned (NUL, lone surrogate, malformed body), in rotation.
  CHAOS_POISON_EVERY: int(4, 2, 100),
  CHAOS_TENANTS: int(3, 1, 20),
  // Which faults to run, in order: a = kill -9 the worker, b = stop PostgreSQL, c = poisoned items.
  CHAOS_FAULTS: z.string().regex(/^[abc](,[abc])*$/, 'comma-separated letters among a, b, c').default('a,b,c'),
  // A child that crashed is started again once the database is up, so the later faults still say something.
  CHAOS_RESTART_CRASHED: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  // The children's log level (their output goes to files in the run folder; the tail is printed when one crashes).
  CHAOS_CHILD_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('warn'),
  // Keep the run folder (database, child logs) instead of deleting it at the end.
  CHAOS_KEEP: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
})
export type ChaosSettings = z.infer<typeof ChaosSettings>

export function parseChaosSettings(env: Record<string, string | undefined>): ChaosSettings {
  const only = Object.fromEntries(Object.entries(env).filter(([k, v]) => k.startsWith('CHAOS_') && v !== ''))
  const result = ChaosSettings.safeParse(only)
  if (!result.success) {
    const issue = result.error.issues[0]!
    throw new Error(`chaos: bad ${String(issue.path[0])}: ${issue.message}`)
  }
  return result.data
}

export const faultsOf = (s: ChaosSettings) => s.CHAOS_FAULTS.split(',') as ('a' | 'b' | 'c')[]
