/**
 * A server for ops/bench/experiments.ts part 2, in a process of its own, so that autocannon (in the bench's process)
 * does not share the server's event loop: in one process every response's latency included the load generator's own
 * JavaScript. They still share the machine's 2 cores (and PostgreSQL's).
 *
 * Environment: BENCH_SERVE ('api' or 'bare'), BENCH_RUNTIME_URL (the runtime role's URL, for 'api'), BENCH_POOL_MAX,
 * BENCH_CONFIG (JSON of config overrides), BENCH_BARE_BODY (the bare route's fixed answer). Prints `listening <url>`.
 */
import Fastify from 'fastify'
import { parseConfig } from '../../lib/config.js'
import { createSql } from '../../lib/db.js'
import { createLogger } from '../../lib/logger.js'
import { readMigrationFiles } from '../../lib/migrate.js'
import { buildApiApp } from '../../services/api/app.js'

const mode = process.env.BENCH_SERVE
let close: () => Promise<void>
let address: string
if (mode === 'bare') {
  const bare = Fastify()
  const fixed = process.env.BENCH_BARE_BODY ?? '{}'
  bare.post('/v1/experiments/assign', async (_req, reply) => reply.type('application/json').send(fixed))
  address = await bare.listen({ host: '127.0.0.1', port: 0 })
  close = () => bare.close()
} else if (mode === 'api') {
  const log = createLogger({ level: 'warn', service: 'bench' })
  const config = parseConfig({ NODE_ENV: 'development', LOG_LEVEL: 'warn', API_RATE_LIMIT_PER_MINUTE: '100000000', ...JSON.parse(process.env.BENCH_CONFIG ?? '{}') })
  const sql = createSql(process.env.BENCH_RUNTIME_URL!, { max: Number(process.env.BENCH_POOL_MAX ?? 20), quiet: true })
  const app = await buildApiApp({ config, sql, log, migrations: await readMigrationFiles() })
  address = await app.listen({ host: '127.0.0.1', port: 0 })
  close = async () => {
    await app.close()
    await sql.end({ timeout: 5 })
  }
} else {
  throw new Error(`BENCH_SERVE must be api or bare, not ${mode}`)
}
process.stdout.write(`listening ${address}\n`)
process.on('SIGTERM', () => void close().finally(() => process.exit(0)))
