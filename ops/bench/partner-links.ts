/**
 * Partner links (issue 14): GET /l/<code>, the hot path every shared link takes. Each request resolves the code,
 * stores the click (truncated address, keyed hash, user agent, referrer), moves the visitor's attribution, records
 * link.clicked, commits, and answers 302; against a bare Fastify route answering the same 302 with a fixed Location,
 * in the same run, loopback only. Each request is a different visitor (its own cookie), as in real traffic.
 *
 * autocannon counts any non-2xx as "failed": both targets answer 302, so the column shows their totals; the run
 * checks a 302 first and counts clicks stored after it.
 *
 * Environment: BENCH_SECONDS (10), BENCH_CONNECTIONS (50).
 */
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { parseConfig } from '../../lib/config.js'
import { withTenant } from '../../lib/db.js'
import { createLogger } from '../../lib/logger.js'
import { readMigrationFiles } from '../../lib/migrate.js'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { buildWebhooksApp } from '../../services/webhooks/app.js'
import { makeLinkableAssessment, makePartner, makePartnerLink } from '../../test/factories/assessment-partners-rows.js'
import { loadTest, printComparison, startBenchDatabase } from './harness.js'

const SECONDS = Math.min(Number(process.env.BENCH_SECONDS ?? 10), 60)
const CONNECTIONS = Math.min(Number(process.env.BENCH_CONNECTIONS ?? 50), 500)

const db = await startBenchDatabase({ poolMax: 20 })
try {
  const config = parseConfig({ NODE_ENV: 'development', LOG_LEVEL: 'warn', LINK_RATE_LIMIT_PER_IP_PER_MINUTE: '100000000', DATABASE_POOL_MAX: '20' })
  const log = createLogger({ level: 'warn', service: 'bench' })
  const { tenant } = await createTenantWithFirstKey(db.sql, { name: 'Bench', slug: `bench-${randomBytes(3).toString('hex')}`, defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'k' })
  const code = 'bench-link'
  await withTenant(db.sql, tenant.id, async (tx) => {
    const a = await makeLinkableAssessment(tx, tenant.id)
    const p = await makePartner(tx, tenant.id)
    await makePartnerLink(tx, tenant.id, p.id, a.id, { code })
  })
  const ours = await buildWebhooksApp({ config, sql: db.sql, log, migrations: await readMigrationFiles() })
  const bare = Fastify()
  bare.get('/l/:code', async (_req, reply) => reply.header('set-cookie', 'wa_lv=x').redirect('https://go.example/assessments/pk/start?link=bench-link', 302))
  const oursUrl = `${await ours.listen({ host: '127.0.0.1', port: 0 })}/l/${code}`
  const bareUrl = `${await bare.listen({ host: '127.0.0.1', port: 0 })}/l/${code}`
  try {
    const first = await fetch(oursUrl, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0 Firefox/128.0' } })
    if (first.status !== 302) throw new Error(`GET /l/${code} answered ${first.status}`)
    const headers = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0', referer: 'https://instagram.com/partner' }
    const request = () => ({ headers: { cookie: `wa_lv=${randomBytes(16).toString('base64url')}` } })
    await loadTest({ name: 'warm', url: oursUrl, method: 'GET', headers, connections: 10, durationSeconds: 2, setupRequest: request })
    const [before] = await db.owner<{ n: number }[]>`select count(*)::int as n from assessments.link_clicks`
    const results = [
      await loadTest({ name: 'bare 302 route', url: bareUrl, method: 'GET', headers, connections: CONNECTIONS, durationSeconds: SECONDS, setupRequest: request }),
      await loadTest({ name: 'GET /l/:code', url: oursUrl, method: 'GET', headers, connections: CONNECTIONS, durationSeconds: SECONDS, setupRequest: request }),
    ]
    const [after] = await db.owner<{ n: number }[]>`select count(*)::int as n from assessments.link_clicks`
    console.log(`GET /l/:code at ${CONNECTIONS} connections for ${SECONDS} s (loopback)`)
    printComparison(results, ['bare 302 route'])
    console.log(`clicks stored during the run: ${after!.n - before!.n} of ${results[1]!.total} requests`)
  } finally {
    await Promise.all([ours.close(), bare.close()])
  }
} finally {
  await db.close()
}
