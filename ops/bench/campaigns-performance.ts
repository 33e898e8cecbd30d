/**
 * `npm run bench:campaigns-performance`: the campaign performance report part alone (ops/bench/campaigns/performance.ts),
 * on a database and tenant of its own. `npm run bench:campaigns` (h/campaigns) runs the same part among the others.
 */
import { parseConfig } from '../../lib/config.js'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { benchCampaignPerformance, TARGET_P95_MS } from './campaigns/performance.js'
import { startBenchDatabase } from './harness.js'

const db = await startBenchDatabase({ poolMax: 8 })
const config = parseConfig({ NODE_ENV: 'development', LOG_LEVEL: 'warn', API_RATE_LIMIT_PER_MINUTE: '100000000', AUTO_SEED: 'false' })
let result
try {
  result = await benchCampaignPerformance({
    db, config,
    tenant: async () => {
      const { tenant, apiKey } = await createTenantWithFirstKey(db.sql, { name: 'bench', slug: 'bench-perf', defaultCountry: 'BR', timezone: 'America/Sao_Paulo', firstKeyName: 'k' })
      return { tenantId: tenant.id, apiKey: apiKey.key }
    },
  })
} finally {
  await db.close()
}
process.exit(result.same && result.p95 <= TARGET_P95_MS ? 0 : 1)
