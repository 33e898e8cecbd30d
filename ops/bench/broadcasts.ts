/**
 * `npm run bench:broadcasts`: the broadcast bench (ops/bench/campaigns/broadcast.ts) on its own; `bench:campaigns`
 * runs it with the other campaign benches once they are merged.
 *
 * Environment: BENCH_BROADCAST_RECIPIENTS (2000; the full run is 10000), BENCH_BROADCAST_BASELINE (800),
 * BENCH_BROADCAST_LIMIT (80/s), BENCH_BROADCAST_GOVERNOR_RATE (WHATSAPP_SEND_RATE_PER_SECOND; default the limit), WORKER_CONCURRENCY (16), BENCH_BROADCAST_HEARTBEAT_MS (2000: how soon the restarted
 * worker takes back the killed one's jobs), BENCH_BROADCAST_KILL_AT (0.4), BENCH_BROADCAST_DEADLINE_S (600),
 * BENCH_DATABASE_URL (else embedded).
 */
import { optionsFromEnv, runBroadcastBench } from './campaigns/broadcast.js'

const options = optionsFromEnv()
const result = await runBroadcastBench(options)
const widths = result.header.map((h, i) => Math.max(h.length, ...result.rows.map((r) => r[i]!.length)))
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')
console.log(`broadcast: ${options.recipients} recipients at a limit of ${options.limit}/s (governor ${options.governorRate}/s), worker (concurrency ${options.concurrency}) killed with SIGKILL at ${Math.round(options.killAt * 100)}% and restarted`)
console.log(line(result.header))
console.log(widths.map((w) => '-'.repeat(w)).join('  '))
for (const r of result.rows) console.log(line(r))
console.log(Object.entries(result.summary).map(([k, v]) => `${k}: ${v}`).join('; '))
console.log(result.ok ? 'OK: rate >= 0.95 x limit, no 130429/131056, no duplicates, none missed' : 'NOT OK: see the table')
process.exit(result.ok ? 0 : 1)
