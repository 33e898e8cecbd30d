/**
 * Experiments (issue 11), against baselines in the same run, bounded, loopback only.
 *
 * Part 1, bucketing: our domains/experiments/hashing against @growthbook/growthbook on the same 1,000,000 unit ids
 * (mixed ASCII and unicode), alternating rounds. Compared: our bucketUnit (namespace, hash v2, ranges, choose) vs the
 * SDK's own util functions doing the same steps, and vs the SDK's public runInlineExperiment (what an SDK user calls).
 * Agreement: the variation for every id against runInlineExperiment's, which must be 100%.
 *
 * Part 2, POST /v1/experiments/assign with 10 running experiments (lead-unit, mixed weights, coverage, targeting and
 * a namespace), each request a different lead of a 100,000-lead tenant (the first request of a lead assigns, a later
 * one reads its stored assignments), against a bare Fastify route answering a fixed body, at 50 connections and at 10;
 * beside it GET /v1/me (authentication and one tenant read) and both routes with the in-process caches turned off (API
 * keys looked up, experiments read with every request), and the assign route again with migration 0050's triggers
 * swapped back in (every touched person recomputed inside the assigning statement: the baseline 0057's queue
 * replaced). Each server runs in a process of its own
 * (experiments-server.ts), autocannon in this one: they share the machine's 2 cores, not an event loop.
 *
 * Part 3, GET /v1/experiments/:id/results for an experiment with 1,000,000 assigned units (two arms, 80% exposed, a
 * conversion goal and a revenue goal summed per unit), the data built inside the database with generate_series (timed
 * on its own; triggers are off during the load, as in a restore, so the maintained rows are then built by the
 * experiment's rebuild, timed too). Our results (experimentResults, the route's function, reading the maintained
 * totals of migration 0050) against, in the same run, the previous implementation (the same function counting from
 * scratch in one statement, fromScratch) and a naive one (every assignment, exposure and goal event read into Node and
 * counted there); then again with BENCH_PENDING_DELTAS (3,000) assignments made one statement each through the
 * triggers and not drained (their persons queued, migration 0057; about a minute of assigning at 50 a second), and once
 * more after the drain and fold.
 *
 * Environment: BENCH_IDS (1,000,000), BENCH_ROUNDS (3), BENCH_SECONDS (10), BENCH_CONNECTIONS (50), BENCH_LEADS (100,000),
 * BENCH_UNITS (1,000,000), BENCH_RESULT_RUNS (5), BENCH_PART (1, 2 or 3 to run one part).
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { GrowthBookClient, type Experiment } from '@growthbook/growthbook'
import { withTenant } from '../../lib/db.js'
import { bucketUnit, compileBucketing, getBucketRanges, type Namespace } from '../../domains/experiments/hashing.js'
import { CreateExperimentBody } from '../../domains/experiments/schemas.js'
import { createExperiment, experimentResults, maintainResults, startExperiment } from '../../domains/experiments/service.js'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { loadTest, printComparison, startBenchDatabase } from './harness.js'

const IDS = Math.min(Number(process.env.BENCH_IDS ?? 1_000_000), 5_000_000)
const ROUNDS = Math.min(Number(process.env.BENCH_ROUNDS ?? 3), 10)
const SECONDS = Math.min(Number(process.env.BENCH_SECONDS ?? 10), 60)
const CONNECTIONS = Math.min(Number(process.env.BENCH_CONNECTIONS ?? 50), 500)
const LEADS = Math.min(Number(process.env.BENCH_LEADS ?? 100_000), 2_000_000)
const PART = process.env.BENCH_PART
const UNITS = Math.min(Number(process.env.BENCH_UNITS ?? 1_000_000), 5_000_000)
const RESULT_RUNS = Math.min(Number(process.env.BENCH_RESULT_RUNS ?? 5), 20)
const PENDING_DELTAS = Math.min(Number(process.env.BENCH_PENDING_DELTAS ?? 3000), 50_000)
const runs = (part: string) => PART === undefined || PART === part

// The baseline in the same run: the assign route with migration 0050's triggers (every touched person locked and
// recomputed inside the assigning statement) instead of 0057's (the persons queued). Their functions are read from the
// migrations' own files and swapped in as the owner for the run, then 0057's put back.
const INLINE_0050 = 'POST /v1/experiments/assign, 0050 triggers (inline recompute)'
const migrationFile = (name: string) => readFileSync(fileURLToPath(new URL(`../../db/migrations/${name}`, import.meta.url)), 'utf8')
const functionsOf = (sqlText: string, names: string[]) => names.map((name) => {
  const m = new RegExp(`create (or replace )?function experiments\\.${name}\\([\\s\\S]*?\\nend \\$\\$;`).exec(sqlText)
  if (!m) throw new Error(`function experiments.${name} not found`)
  return m[0].replace(/^create (or replace )?function/, 'create or replace function')
})
const TRIGGER_FUNCTIONS = ['refresh_result_units', 'refresh_results_of_rows']
async function withTriggersOf0050<T>(owner: BenchOwner, fn: () => Promise<T>): Promise<T> {
  for (const f of functionsOf(migrationFile('0050_maintain_experiment_results.sql'), TRIGGER_FUNCTIONS)) await owner.unsafe(f)
  try {
    return await fn()
  } finally {
    for (const f of functionsOf(migrationFile('0057_queue_experiment_result_refreshes.sql'), TRIGGER_FUNCTIONS)) await owner.unsafe(f)
  }
}
type BenchOwner = Awaited<ReturnType<typeof startBenchDatabase>>['owner']

/** Starts ops/bench/experiments-server.ts in a process of its own; resolves with its URL once it listens. */
async function serve(env: Record<string, string>): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./experiments-server.ts', import.meta.url))], {
    env: { ...process.env, BENCH_POOL_MAX: process.env.BENCH_POOL_MAX ?? '20', ...env }, stdio: ['ignore', 'pipe', 'inherit'],
  })
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /listening (\S+)/.exec(out)
      if (m) resolve(m[1]!)
    })
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)))
  })
  return { url, stop: () => new Promise<void>((r) => { child.once('exit', () => r()); child.kill('SIGTERM') }) }
}

// ---------------------------------------------------------------------------------------------------------------
// Part 1: bucketing.

if (runs('1')) {
  const require = createRequire(import.meta.url)
  const gbRoot = path.dirname(require.resolve('@growthbook/growthbook/package.json'))
  const gb = (await import(path.join(gbRoot, 'dist/cjs/util.js'))) as {
    hash(seed: string, value: string, version: number): number | null
    getBucketRanges(n: number, coverage: number, weights: number[]): [number, number][]
    chooseVariation(n: number, ranges: [number, number][]): number
    inNamespace(id: string, ns: [string, number, number]): boolean
  }
  const client = new GrowthBookClient({})
  const unicode = ['é', '中', '😀', 'ж', '🇧🇷']
  const ids = Array.from({ length: IDS }, (_, i) => (i % 10 === 0 ? `visitor-${unicode[i % 5]}-${i}` : `${(i * 2654435761 >>> 0).toString(16)}-${i}`))
  const seed = 'landing-hero'
  const weights = [0.2, 0.3, 0.5]
  const coverage = 0.9
  const namespace: Namespace = ['checkout', 0.1, 0.85]
  const bucketing = { seed, hashVersion: 2, coverage, weights, namespace }
  const experiment: Experiment<number> = { key: seed, seed, variations: [0, 1, 2], weights, coverage, hashVersion: 2, namespace: [...namespace] }

  let sink = 0
  const candidates: Record<string, () => Int8Array> = {
    'ours: compileBucketing (assign route)': () => {
      const bucket = compileBucketing(bucketing)
      const out = new Int8Array(ids.length)
      for (let i = 0; i < ids.length; i++) out[i] = bucket(ids[i]!)
      return out
    },
    'ours: bucketUnit': () => {
      const ranges = getBucketRanges(3, coverage, weights)
      const out = new Int8Array(ids.length)
      for (let i = 0; i < ids.length; i++) out[i] = bucketUnit(bucketing, ids[i]!, ranges)
      return out
    },
    'growthbook util (same steps)': () => {
      const ranges = gb.getBucketRanges(3, coverage, weights)
      const ns: [string, number, number] = [...namespace]
      const out = new Int8Array(ids.length)
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!
        if (!gb.inNamespace(id, ns)) { out[i] = -1; continue }
        const n = gb.hash(seed, id, 2)
        out[i] = n === null ? -1 : gb.chooseVariation(n, ranges)
      }
      return out
    },
    'growthbook runInlineExperiment': () => {
      const out = new Int8Array(ids.length)
      for (let i = 0; i < ids.length; i++) {
        const r = client.runInlineExperiment(experiment, { attributes: { id: ids[i] } })
        out[i] = r.inExperiment ? r.variationId : -1
      }
      return out
    },
  }
  const best: Record<string, number> = {}
  const answers: Record<string, Int8Array> = {}
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, fn] of Object.entries(candidates)) {
      const t = performance.now()
      const out = fn()
      const s = (performance.now() - t) / 1000
      best[name] = Math.min(best[name] ?? Infinity, s)
      answers[name] = out
      sink += out[r] ?? 0
    }
  }
  const oracle = answers['growthbook runInlineExperiment']!
  console.log(`\nBucketing ${IDS.toLocaleString('en-US')} ids (3 variations 0.2/0.3/0.5, coverage 0.9, namespace [0.1, 0.85)), best of ${ROUNDS} rounds\n`)
  const rows = Object.entries(best).map(([name, s]) => {
    const agree = answers[name]!.reduce((n, v, i) => n + (v === oracle[i] ? 1 : 0), 0)
    return [name, (IDS / s / 1e6).toFixed(2), (s * 1000).toFixed(0), `${(best['growthbook util (same steps)']! / s).toFixed(2)}×`, `${(best['growthbook runInlineExperiment']! / s).toFixed(2)}×`, `${((agree / IDS) * 100).toFixed(4)}%`]
  })
  const header = ['', 'M ids/s', 'ms', 'vs gb util', 'vs gb run', 'agreement']
  console.log(header.join('  |  '))
  for (const r of rows) console.log(r.join('  |  '))
  const inExperiment = oracle.reduce((n, v) => n + (v >= 0 ? 1 : 0), 0)
  console.log(`(${((inExperiment / IDS) * 100).toFixed(1)}% of ids in the experiment; checksum ${sink})`)
  if (rows.some((r) => r[5] !== '100.0000%')) {
    console.error('bucketing disagrees with GrowthBook')
    process.exitCode = 1
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Part 2: POST /v1/experiments/assign.

if (runs('2')) {
  const db = await startBenchDatabase({ poolMax: Number(process.env.BENCH_POOL_MAX ?? 20) })
  try {
    const { tenant, apiKey } = await createTenantWithFirstKey(db.sql, { name: 'Bench', slug: 'bench', defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'k' })
    const who = { tenantId: tenant.id, actor: 'bench', requestId: null }
    const shapes: Partial<CreateExperimentBody>[] = [
      {}, { coverage: 0.5 }, { targeting: { attribute: 'country', op: 'eq', value: 'BR' } },
      { targeting: { or: [{ attribute: 'tags', op: 'eq', value: 'vip' }, { attribute: 'source', op: 'in', value: ['import', 'web_form'] }] } },
      { namespace: { id: 'greeting', start: 0, end: 0.5 } }, { namespace: { id: 'greeting', start: 0.5, end: 1 } },
      { variations: [{ key: 'a', weight: 0.2 }, { key: 'b', weight: 0.3 }, { key: 'c', weight: 0.5 }] },
      { variations: [{ key: 'a', weight: 0.25, value: 'Oi!' }, { key: 'b', weight: 0.25, value: 'Olá!' }, { key: 'c', weight: 0.25, value: 'Bom dia!' }, { key: 'd', weight: 0.25, value: 'E aí?' }] },
      { targeting: { not: { attribute: 'status', op: 'eq', value: 'lost' } } }, { coverage: 0.8, targeting: { attribute: 'custom.visits', op: 'gt', value: 2 } },
    ]
    for (const [i, shape] of shapes.entries()) {
      const e = await createExperiment(db.sql, who, CreateExperimentBody.parse({ key: `bench-${i}`, name: `Bench ${i}`, variations: [{ key: 'control', weight: 0.5 }, { key: 'treatment', weight: 0.5 }], ...shape }))
      await startExperiment(db.sql, who, e.id)
    }
    await db.owner.begin(async (tx) => {
      await tx`select set_config('app.tenant_id', ${tenant.id}, true)`
      await tx`insert into marketing.leads (tenant_id, email, source, tags) select ${tenant.id}, 'bench' || i || '@example.org', 'import', case when i % 7 = 0 then '{vip}'::text[] else '{}' end from generate_series(1, ${LEADS}::int) i`
    })
    await db.owner`analyze marketing.leads`
    const leadIds = (await db.owner<{ id: string }[]>`select id from marketing.leads where tenant_id = ${tenant.id}`).map((r) => r.id)
    console.log(`\n${LEADS.toLocaleString('en-US')} leads, 10 running experiments`)

    // The servers run in processes of their own (experiments-server.ts): autocannon here does not share their event
    // loop, only the machine's cores. "caches off" is the same API with both in-process caches turned off (every key
    // looked up, experiments read by experiments.assign_context with every request), as before issue 11's cache work.
    const fixed = JSON.stringify({ assignments: Array.from({ length: 8 }, (_, i) => ({ experimentId: '00000000-0000-4000-8000-000000000000', experimentKey: `bench-${i}`, phase: 1, variationKey: 'control', variationIndex: 0, isNew: false, assignedAt: new Date().toISOString() })) })
    const servers = [
      await serve({ BENCH_SERVE: 'bare', BENCH_BARE_BODY: fixed }),
      await serve({ BENCH_SERVE: 'api', BENCH_RUNTIME_URL: db.runtimeUrl, BENCH_CONFIG: JSON.stringify({ API_KEY_CACHE_TTL_MS: '0', EXPERIMENT_CACHE_TTL_MS: '0' }) }),
      await serve({ BENCH_SERVE: 'api', BENCH_RUNTIME_URL: db.runtimeUrl }),
    ]
    try {
      const [bareUrl, plainUrl, oursUrl] = servers.map((x) => `${x.url}/v1/experiments/assign`) as [string, string, string]
      let next = 0
      const request = () => ({ body: JSON.stringify({ leadId: leadIds[next++ % leadIds.length], attributes: { country: next % 3 === 0 ? 'MX' : 'BR', visits: next % 5 } }) })
      const headers = { 'content-type': 'application/json', authorization: `Bearer ${apiKey.key}` }
      const me = (url: string) => url.replace('/v1/experiments/assign', '/v1/me')
      // Warm every server (connections, JIT, plans, caches), then measure.
      for (const url of [bareUrl, plainUrl, oursUrl]) await loadTest({ name: 'warm', url, headers, connections: 10, durationSeconds: 2, setupRequest: request })
      const at = async (connections: number, rows: [string, string, 'GET' | 'POST'][]) => {
        const out = []
        for (const [name, url, method] of rows) {
          out.push(method === 'GET'
            ? await loadTest({ name, url, method, headers: { authorization: headers.authorization }, connections, durationSeconds: SECONDS })
            : await loadTest({ name, url, headers, connections, durationSeconds: SECONDS, setupRequest: request }))
        }
        return out
      }
      const results = [
        ...await at(CONNECTIONS, [
          ['bare route', bareUrl, 'POST'],
          ['GET /v1/me, key cache off', me(plainUrl), 'GET'],
          ['GET /v1/me', me(oursUrl), 'GET'],
          ['POST /v1/experiments/assign, caches off', plainUrl, 'POST'],
          ['POST /v1/experiments/assign', oursUrl, 'POST'],
        ]),
        ...await withTriggersOf0050(db.owner, () => at(CONNECTIONS, [[INLINE_0050, oursUrl, 'POST']])),
      ]
      const few = [
        ...await at(10, [['bare route', bareUrl, 'POST'], ['POST /v1/experiments/assign', oursUrl, 'POST']]),
        ...await withTriggersOf0050(db.owner, () => at(10, [[INLINE_0050, oursUrl, 'POST']])),
      ]
      const [stored] = await db.owner<{ n: number; leads: number }[]>`select count(*)::int as n, count(distinct lead_id)::int as leads from experiments.assignments`
      console.log(`\n${SECONDS} s each; ${stored!.n.toLocaleString('en-US')} assignments stored for ${stored!.leads.toLocaleString('en-US')} leads (a lead's first request assigns, later ones read)`)
      console.log(`\n${CONNECTIONS} connections\n`)
      printComparison(results, ['bare route', 'GET /v1/me, key cache off', 'POST /v1/experiments/assign, caches off', INLINE_0050])
      console.log('\n10 connections\n')
      printComparison(few, ['bare route', INLINE_0050])
      const assign = results[4]!
      const inline = results[5]!
      console.log(`\np99 ${assign.p99Ms.toFixed(1)} ms at ${CONNECTIONS} connections, ${few[1]!.p99Ms.toFixed(1)} ms at 10 (target ≤ 10 ms at 50); ${[...results, ...few].reduce((n, r) => n + r.non2xx + r.errors, 0)} failed`)
      console.log(`queued (0057) vs inline (0050) triggers: ${(assign.requestsPerSecond / inline.requestsPerSecond).toFixed(2)}× req/s at ${CONNECTIONS} connections (p99 ${assign.p99Ms.toFixed(0)} vs ${inline.p99Ms.toFixed(0)} ms), ${(few[1]!.requestsPerSecond / few[2]!.requestsPerSecond).toFixed(2)}× at 10 (p99 ${few[1]!.p99Ms.toFixed(0)} vs ${few[2]!.p99Ms.toFixed(0)} ms)`)
    } finally {
      await Promise.all(servers.map((x) => x.stop()))
    }
  } finally {
    await db.close()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Part 3: results at 1,000,000 assigned units.

if (runs('3')) {
  const db = await startBenchDatabase({ poolMax: 4 })
  try {
    const { tenant } = await createTenantWithFirstKey(db.sql, { name: 'Bench results', slug: 'bench-results', defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'k' })
    const who = { tenantId: tenant.id, actor: 'bench', requestId: null }
    const goals = [{ event: 'lead.qualified', windowHours: 168 }, { event: 'order.paid', windowHours: 168, aggregate: 'sum' as const, property: 'amount' }]
    const created = await createExperiment(db.sql, who, CreateExperimentBody.parse({ key: 'bench-results', name: 'Results at scale', variations: [{ key: 'control', weight: 0.5 }, { key: 'treatment', weight: 0.5 }], goals }))
    const e = await startExperiment(db.sql, who, created.id)
    const timed = async (label: string, fn: () => Promise<unknown>) => {
      const t = performance.now()
      await fn()
      console.log(`  ${label}: ${((performance.now() - t) / 1000).toFixed(1)} s`)
    }
    console.log(`\nBuilding ${UNITS.toLocaleString('en-US')} assigned units inside the database (generate_series, one statement per table):`)
    // Units are assigned over the last 10 days; goal events fall inside their window (and 1 in 10 qualified ones after it).
    await db.owner.begin(async (tx) => {
      await tx`select set_config('app.tenant_id', ${tenant.id}, true)`
      // The rows are consistent by construction: foreign-key triggers are skipped for the load where the owner may
      // (a superuser, as the embedded server's is), as a restore does.
      await tx`set local session_replication_role = replica`.catch(() => console.log('  (not a superuser: foreign keys are checked during the load)'))
      // The experiment has been running for 10 days, as its units' assignment times say.
      await tx`update experiments.phases set started_at = now() - interval '10 days 1 hour' where experiment_id = ${e.id}`
      await timed('leads', () => tx`
        insert into marketing.leads (tenant_id, email, source, created_at)
        select ${tenant.id}, 'unit' || i || '@bench.example', 'import', now() - (i % 864000) * interval '1 second' from generate_series(1, ${UNITS}::int) i`)
      // Leads assigned later, through the triggers (the pending deltas below).
      await tx`
        insert into marketing.leads (tenant_id, email, source, created_at)
        select ${tenant.id}, 'later' || i || '@bench.example', 'import', now() from generate_series(1, ${PENDING_DELTAS}::int) i`
      await tx`
        insert into marketing.leads (tenant_id, email, source, created_at)
        select ${tenant.id}, 'probe' || i || '@bench.example', 'import', now() from generate_series(1, 400) i`
      await timed('assignments', () => tx`
        insert into experiments.assignments (tenant_id, experiment_id, phase, unit_id, lead_id, variation_key, variation_index, source, assigned_at)
        select ${tenant.id}, ${e.id}, 1, l.id::text, l.id, case when h % 2 = 0 then 'control' else 'treatment' end, (h % 2)::int, 'api', l.created_at
          from (select id, created_at, (2147483647 & hashtext(id::text)) as h from marketing.leads where tenant_id = ${tenant.id} and email like 'unit%') l`)
      await timed('exposures (80%)', () => tx`
        insert into experiments.exposures (tenant_id, experiment_id, phase, unit_id, lead_id, variation_key, exposed_at, source)
        select tenant_id, experiment_id, phase, unit_id, lead_id, variation_key, assigned_at + interval '1 minute', 'flow'
          from experiments.assignments where experiment_id = ${e.id} and (2147483647 & hashtext(unit_id || 'x')) % 5 <> 0`)
      await timed('goal events', () => tx`
        insert into analytics.events (tenant_id, name, lead_id, occurred_at, properties, source)
        select a.tenant_id, g.name, a.lead_id, a.assigned_at + g.after, g.properties, 'bench'
          from experiments.assignments a
          cross join lateral (
            select 'lead.qualified' as name, case when (2147483647 & hashtext(a.unit_id || 'late')) % 10 = 0 then interval '200 hours' else interval '3 hours' end as after, '{}'::jsonb as properties
             where (2147483647 & hashtext(a.unit_id || 'q')) % 100 < case when a.variation_key = 'control' then 10 else 12 end
            union all
            select 'order.paid', interval '5 hours', jsonb_build_object('amount', 20 + (2147483647 & hashtext(a.unit_id || 'amt')) % 200)
             where (2147483647 & hashtext(a.unit_id || 'p')) % 100 < 5
          ) g
         where a.experiment_id = ${e.id}`)
    })
    // As autovacuum would have by then: statistics, and the visibility map that lets index-only scans skip the heap.
    await timed('vacuum analyze', async () => {
      for (const t of ['marketing.leads', 'experiments.assignments', 'experiments.exposures', 'analytics.events']) await db.owner.unsafe(`vacuum analyze ${t}`)
    })
    // The load ran without triggers: the maintained rows are built as for an experiment from before migration 0050.
    await timed('maintained rows (experiments.rebuild_result_units, then the fold)', async () => {
      await db.owner`update experiments.experiments set results_goals = null where id = ${e.id}`
      await maintainResults(db.sql, { tenantIds: [tenant.id] })
    })
    for (const t of ['experiments.result_units', 'experiments.result_totals', 'experiments.result_deltas']) await db.owner.unsafe(`vacuum analyze ${t}`)
    const [counts] = await db.owner<{ units: number; events: number }[]>`
      select (select count(*)::int from experiments.assignments where experiment_id = ${e.id}) as units,
             (select count(*)::int from analytics.events where tenant_id = ${tenant.id}) as events`
    console.log(`  ${counts!.units.toLocaleString('en-US')} units, ${counts!.events.toLocaleString('en-US')} goal events`)

    // The naive implementation: read everything the results need into the process and count there.
    const naive = () => withTenant(db.sql, tenant.id, async (tx) => {
      const units = await tx<{ leadId: string; variationKey: string; assignedAt: Date }[]>`
        select lead_id, variation_key, assigned_at from experiments.assignments where experiment_id = ${e.id} and phase = 1`
      const exposures = await tx<{ leadId: string; variationKey: string }[]>`select lead_id, variation_key from experiments.exposures where experiment_id = ${e.id} and phase = 1`
      type Ev = { leadId: string; name: string; occurredAt: Date; properties: { amount?: number } }
      const events = await tx<Ev[]>`
        select lead_id, name, occurred_at, properties from analytics.events where name in ('lead.qualified', 'order.paid')`
      const byLead = new Map<string, Ev[]>()
      for (const ev of events) {
        const list = byLead.get(ev.leadId)
        if (list) list.push(ev)
        else byLead.set(ev.leadId, [ev])
      }
      const out: Record<string, { units: number; exposed: number; conversions: number; revenue: number }> = {}
      const exposed = new Set(exposures.map((x) => `${x.leadId}:${x.variationKey}`))
      for (const u of units) {
        const o = (out[u.variationKey] ??= { units: 0, exposed: 0, conversions: 0, revenue: 0 })
        o.units++
        if (exposed.has(`${u.leadId}:${u.variationKey}`)) o.exposed++
        const mine = byLead.get(u.leadId) ?? []
        const inWindow = (ev: Ev) => ev.occurredAt >= u.assignedAt && ev.occurredAt.getTime() < u.assignedAt.getTime() + 168 * 3600_000
        if (mine.some((ev) => ev.name === 'lead.qualified' && inWindow(ev))) o.conversions++
        o.revenue += mine.filter((ev) => ev.name === 'order.paid' && inWindow(ev)).reduce((s, ev) => s + Number(ev.properties.amount ?? 0), 0)
      }
      return out
    })
    const ours = () => experimentResults(db.sql, tenant.id, e.id)
    const previous = () => experimentResults(db.sql, tenant.id, e.id, undefined, { fromScratch: true })

    const samples: Record<string, number[]> = { ours: [], previous: [], naive: [] }
    let answer: Awaited<ReturnType<typeof ours>> = null
    let previousAnswer: Awaited<ReturnType<typeof ours>> = null
    let naiveAnswer: Awaited<ReturnType<typeof naive>> = {}
    // Alternating, after one warm-up run of each (plans, caches).
    await ours()
    await previous()
    await naive()
    for (let r = 0; r < RESULT_RUNS; r++) {
      let t = performance.now()
      answer = await ours()
      samples.ours!.push(performance.now() - t)
      t = performance.now()
      previousAnswer = await previous()
      samples.previous!.push(performance.now() - t)
      t = performance.now()
      naiveAnswer = await naive()
      samples.naive!.push(performance.now() - t)
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const names: Record<string, string> = {
      ours: 'experimentResults, maintained totals (GET /v1/experiments/:id/results)',
      previous: 'previous: one statement counting from scratch',
      naive: 'naive: everything into Node',
    }
    console.log(`\nResults of an experiment with ${counts!.units.toLocaleString('en-US')} assigned units, ${RESULT_RUNS} runs each (alternating), ms\n`)
    console.log(['', 'median', 'best', 'worst', 'vs previous (median)', 'vs naive (median)'].join('  |  '))
    for (const [name, xs] of Object.entries(samples)) {
      console.log([names[name], median(xs).toFixed(0), Math.min(...xs).toFixed(0), Math.max(...xs).toFixed(0), `${(median(samples.previous!) / median(xs)).toFixed(2)}×`, `${(median(samples.naive!) / median(xs)).toFixed(2)}×`].join('  |  '))
    }
    const sameAsPrevious = JSON.stringify(answer) === JSON.stringify(previousAnswer)
    console.log(`maintained totals ${sameAsPrevious ? 'equal' : 'DIFFER FROM'} the count from scratch`)
    if (!sameAsPrevious) process.exitCode = 1

    // Assignments through the triggers, one statement each (as the assign route makes them), not folded yet.
    const later = (await db.owner<{ id: string }[]>`select id from marketing.leads where tenant_id = ${tenant.id} and email like 'later%'`).map((r) => r.id)
    const t0 = performance.now()
    for (let i = 0; i < later.length; i += 4) {
      await Promise.all(later.slice(i, i + 4).map((id) => db.sql`
        select experiments.insert_assignments(${tenant.id}::uuid, ${db.sql.json([{ experiment_id: e.id, phase: 1, unit_id: id, lead_id: id, anonymous_id: null, variation_key: 'control', variation_index: 0, source: 'api' }] as never)}::jsonb)`))
    }
    const [pending] = await db.owner<{ n: number; queued: number }[]>`
      select (select count(*)::int from experiments.result_deltas where experiment_id = ${e.id}) as n,
             (select count(*)::int from experiments.result_queue where experiment_id = ${e.id}) as queued`
    console.log(`\n${later.length.toLocaleString('en-US')} assignments through the triggers, one statement each, 4 at a time: ${((performance.now() - t0) / later.length).toFixed(2)} ms per statement; ${pending!.queued.toLocaleString('en-US')} persons queued (not recomputed), ${pending!.n.toLocaleString('en-US')} deltas not folded`)
    const timeRuns = async (fn: () => Promise<unknown>) => {
      await fn()
      const xs: number[] = []
      for (let r = 0; r < RESULT_RUNS; r++) {
        const t = performance.now()
        await fn()
        xs.push(performance.now() - t)
      }
      return xs
    }
    // What the triggers add to an assignment statement: the same statement with and without them (session_replication_role
    // replica), alternating, each in a transaction rolled back (so the totals stay as they are).
    const probes = (await db.owner<{ id: string }[]>`select id from marketing.leads where tenant_id = ${tenant.id} and email like 'probe%'`).map((r) => r.id)
    // Then the same with migration 0050's triggers swapped back in (inline recompute), on the same leads (rolled back).
    type Mode = 'with triggers' | 'without' | 'with 0050 triggers' | 'without (0050 block)'
    const cost: Record<Mode, number[]> = { 'with triggers': [], without: [], 'with 0050 triggers': [], 'without (0050 block)': [] }
    const probe = async (withMode: Mode, withoutMode: Mode) => {
      for (const [i, id] of probes.entries()) {
        const mode = i % 2 === 0 ? withMode : withoutMode
        await db.owner.begin(async (tx) => {
          if (mode === withoutMode) await tx`set local session_replication_role = replica`
          await tx`select set_config('app.tenant_id', ${tenant.id}, true)`
          const t = performance.now()
          await tx`select experiments.insert_assignments(null, ${tx.json([{ experiment_id: e.id, phase: 1, unit_id: id, lead_id: id, anonymous_id: null, variation_key: 'control', variation_index: 0, source: 'api' }] as never)}::jsonb)`
          cost[mode].push(performance.now() - t)
          throw new Error('rollback')
        }).catch((err: Error) => { if (err.message !== 'rollback') throw err })
      }
    }
    await probe('with triggers', 'without')
    await withTriggersOf0050(db.owner, () => probe('with 0050 triggers', 'without (0050 block)'))
    console.log(`one assignment statement, ${probes.length / 2} each alternating (rolled back): median ${median(cost['with triggers']).toFixed(2)} ms with the triggers, ${median(cost.without).toFixed(2)} ms without; with 0050's triggers ${median(cost['with 0050 triggers']).toFixed(2)} ms, ${median(cost['without (0050 block)']).toFixed(2)} ms without (${(median(cost['with 0050 triggers']) / median(cost['with triggers'])).toFixed(2)}× the queue's)`)
    const withPending = await timeRuns(ours)
    const pendingAnswer = await ours()
    const pendingPrevious = await previous()
    const t1 = performance.now()
    await maintainResults(db.sql, { tenantIds: [tenant.id] })
    const foldMs = performance.now() - t1
    const afterFold = await timeRuns(ours)
    console.log(`results with those persons queued: median ${median(withPending).toFixed(0)} ms (best ${Math.min(...withPending).toFixed(0)}); the drain and fold ${foldMs.toFixed(0)} ms (${(foldMs / Math.max(1, pending!.queued)).toFixed(2)} ms per queued person); after it: median ${median(afterFold).toFixed(0)} ms`)
    const pendingSame = JSON.stringify(pendingAnswer) === JSON.stringify(pendingPrevious)
    console.log(`with persons queued, maintained totals ${pendingSame ? 'equal' : 'DIFFER FROM'} the count from scratch`)
    if (!pendingSame) process.exitCode = 1
    // Both must say the same.
    const disagreements = answer!.variations.flatMap((v) => {
      const n = naiveAnswer[v.key]!
      const conv = v.goals[0] as { conversions?: number }
      const rev = v.goals[1] as { mean?: number; units?: number }
      const ok = n.units === v.units && n.exposed === v.exposed && n.conversions === conv.conversions && Math.abs(n.revenue / n.units - (rev.mean ?? 0)) < 1e-6
      return ok ? [] : [{ key: v.key, ours: { units: v.units, exposed: v.exposed, conversions: conv.conversions, meanRevenue: rev.mean }, naive: { ...n, meanRevenue: n.revenue / n.units } }]
    })
    console.log(`\nmedian ${median(samples.ours!).toFixed(0)} ms (target ≤ 200 ms); answers ${disagreements.length === 0 ? 'agree' : `DISAGREE: ${JSON.stringify(disagreements)}`}`)
    if (disagreements.length > 0) process.exitCode = 1
  } finally {
    await db.close()
  }
}
