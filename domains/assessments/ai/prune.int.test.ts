import { runOnce } from 'graphile-worker'
import { beforeAll, describe, expect, it } from 'vitest'
import { crontab } from '../../../services/workers/crontab.js'
import { pruneAnalysisCacheTask } from '../../../services/workers/tasks/assessments__prune_analysis_cache.js'
import { workerLogger } from '../../../services/workers/worker.js'
import { testConfig, testLogger } from '../../../test/apps.js'
import { useTestDatabase } from '../../../test/db.js'
import { makeTenant, type TestTenant } from '../../../test/factories/tenants.js'
import { pruneAnalysisCache } from './service.js'

describe('AI analysis cache: expired entries and dead claims pruned across tenants (assessments__prune_analysis_cache)', () => {
  const db = useTestDatabase()
  let a: TestTenant
  let b: TestTenant

  /** Entries of each kind for a tenant: fresh and expired ready ones, a live claim and one a dead job left. */
  const fill = async (t: TestTenant, tag: string) => {
    await db.current.owner`
      insert into assessments.analysis_cache (tenant_id, pattern_hash, status, provider, prompt_version, narrative, recommendations, claimed_at, expires_at)
      select ${t.id}, convert_to(${tag} || ':' || k || ':' || i, 'UTF8'),
             case when k like 'pending%' then 'pending' else 'ready' end, 'rules', 1,
             case when k like 'pending%' then null else 'text' end, case when k like 'pending%' then null else '[]'::jsonb end,
             case k when 'pending-dead' then now() - interval '1 hour' else now() end,
             case k when 'expired' then now() - interval '1 minute' when 'fresh' then now() + interval '1 hour' end
        from unnest(array['fresh', 'expired', 'pending-live', 'pending-dead']) k, generate_series(1, 3) i`
  }
  const left = async () =>
    (await db.current.owner<{ k: string; n: number }[]>`
      select split_part(convert_from(pattern_hash, 'UTF8'), ':', 2) as k, count(*)::int as n
        from assessments.analysis_cache group by 1 order by 1`).map((r) => `${r.k}=${r.n}`)

  beforeAll(async () => {
    a = await makeTenant(db.current.sql)
    b = await makeTenant(db.current.sql)
  })

  it('has an hourly crontab line with an id', () => {
    expect(crontab.some((line) => /^\d+ \* \* \* \* assessments__prune_analysis_cache \?id=\S+/.test(line))).toBe(true)
  })

  it('deletes expired entries and dead claims of every tenant in batches, keeping fresh entries and live claims', async () => {
    await fill(a, 'a')
    await fill(b, 'b')
    expect(await left()).toEqual(['expired=6', 'fresh=6', 'pending-dead=6', 'pending-live=6'])
    // Batches of 4: 12 to go takes several statements, under the application's role (security definer, RLS forced).
    expect(await pruneAnalysisCache(db.current.sql, { batch: 4, budgetMs: 60_000 })).toEqual({ deleted: 12, incomplete: false })
    expect(await left()).toEqual(['fresh=6', 'pending-live=6'])
    expect(await pruneAnalysisCache(db.current.sql, { batch: 4, budgetMs: 60_000 })).toEqual({ deleted: 0, incomplete: false })
  })

  it('runs as the cron task through graphile-worker', async () => {
    await db.current.owner`update assessments.analysis_cache set expires_at = now() - interval '1 second' where status = 'ready'`
    await db.current.owner`select graphile_worker.add_job('assessments__prune_analysis_cache', '{}'::json)`
    await runOnce({
      connectionString: db.current.runtimeUrl,
      taskList: { assessments__prune_analysis_cache: pruneAnalysisCacheTask({ config: testConfig(), sql: db.current.sql, log: testLogger() }) },
      logger: workerLogger(testLogger()),
    })
    expect(await left()).toEqual(['pending-live=6'])
  })
})
