/**
 * Lead lookup by email and by phone key at a million leads in one tenant: the queries identity resolution and the
 * API's search run, timed inside the database (EXPLAIN ANALYZE execution time, so no network or driver cost),
 * as the runtime role under row-level security, with the plan printed. Target: p99 < 1 ms, an index scan.
 *
 * Environment: BENCH_LEADS (default 1,000,000), BENCH_LOOKUPS (per kind, default 2,000), BENCH_DATABASE_URL.
 */
import { randomInt } from 'node:crypto'
import { withTenant } from '../../lib/db.js'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { startBenchDatabase } from './harness.js'

const LEADS = Math.min(Number(process.env.BENCH_LEADS ?? 1_000_000), 5_000_000)
const LOOKUPS = Math.min(Number(process.env.BENCH_LOOKUPS ?? 2_000), 20_000)

const db = await startBenchDatabase({ poolMax: 4 })
const { tenant } = await createTenantWithFirstKey(db.sql, { name: 'Bench', slug: 'bench', defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'k' })
// A second tenant with rows of its own, so the tenant predicate and RLS have something to exclude.
const { tenant: other } = await createTenantWithFirstKey(db.sql, { name: 'Other', slug: 'other', defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'k' })

const started = performance.now()
for (const [tenantId, count] of [[tenant.id, LEADS], [other.id, 10_000]] as const) {
  for (let from = 1; from <= count; from += 250_000) {
    const to = Math.min(count, from + 249_999)
    await db.owner`
      insert into marketing.leads (tenant_id, email, phone_e164, phone_key, name, source, created_at)
      select ${tenantId}, 'lead' || g || '@example.com', '+55119' || lpad(g::text, 8, '0'), '+55119' || lpad(g::text, 8, '0'), 'Lead ' || g,
             case when g % 3 = 0 then 'whatsapp' else 'web_form' end, now() - g * interval '1 second'
        from generate_series(${from}::int, ${to}::int) g`
  }
}
await db.owner`vacuum analyze marketing.leads`
console.log(`\nseeded ${LEADS} leads in one tenant (+10,000 in another) in ${((performance.now() - started) / 1000).toFixed(1)} s`)

type Plan = { Plan: { 'Node Type': string; 'Index Name'?: string; Plans?: unknown[] }; 'Execution Time': number }
const explain = (kind: 'email' | 'phone', value: string) =>
  withTenant(db.sql, tenant.id, async (tx) => {
    // The same statements as findLeadIdByEmail / findLeadIdByPhoneKey in domains/marketing/leads/queries.ts.
    const rows = kind === 'email'
      ? await tx<{ 'QUERY PLAN': Plan[] }[]>`explain (analyze, format json) select id from marketing.leads where email = ${value} and merged_into is null`
      : await tx<{ 'QUERY PLAN': Plan[] }[]>`explain (analyze, format json) select id from marketing.leads where phone_key = ${value} and merged_into is null`
    return rows[0]!['QUERY PLAN'][0]!
  })

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
for (const kind of ['email', 'phone'] as const) {
  const value = (n: number) => (kind === 'email' ? `lead${n}@example.com` : `+55119${String(n).padStart(8, '0')}`)
  // Warm up: the first executions plan and fault pages in.
  for (let i = 0; i < 50; i++) await explain(kind, value(randomInt(1, LEADS + 1)))
  const times: number[] = []
  let plan: Plan | undefined
  for (let i = 0; i < LOOKUPS; i++) {
    const result = await explain(kind, value(randomInt(1, LEADS + 1)))
    times.push(result['Execution Time'])
    plan ??= result
  }
  const miss = await explain(kind, kind === 'email' ? 'nobody@example.com' : '+5511900000000')
  times.sort((a, b) => a - b)
  console.log(`\nlookup by ${kind}: ${LOOKUPS} random leads, execution time p50 ${pct(times, 50).toFixed(3)} ms, p99 ${pct(times, 99).toFixed(3)} ms, max ${times.at(-1)!.toFixed(3)} ms; a miss ${miss['Execution Time'].toFixed(3)} ms`)
  console.log(`plan: ${plan!.Plan['Node Type']} using ${plan!.Plan['Index Name'] ?? '(see below)'}`)
  if (!plan!.Plan['Index Name']) console.log(JSON.stringify(plan!.Plan, null, 1))
}

await db.close()
process.exit(0)
