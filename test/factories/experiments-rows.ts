import { withTenant, type Sql } from '../../lib/db.js'
import { CreateExperimentBody } from '../../domains/experiments/schemas.js'
import { assign, createExperiment, maintainResults, startExperiment } from '../../domains/experiments/service.js'
import type { ExperimentView } from '../../domains/experiments/schemas.js'
import { drainResultQueue, type PhaseCount } from '../../domains/experiments/queries.js'
import { makeLead } from './marketing-rows.js'
import type { TestTenant } from './tenants.js'

const who = (tenant: TestTenant) => ({ tenantId: tenant.id, actor: 'test', requestId: null })

/** An experiment created (and, unless `draft`, started) the way the API does it; two equal arms by default. */
export async function makeExperiment(sql: Sql, tenant: TestTenant, overrides: Partial<CreateExperimentBody> & { draft?: boolean } = {}): Promise<ExperimentView> {
  const { draft, ...body } = overrides
  const e = await createExperiment(sql, who(tenant), CreateExperimentBody.parse({
    key: `exp-${Math.random().toString(36).slice(2, 10)}`,
    name: 'Greeting test',
    variations: [{ key: 'control', weight: 0.5 }, { key: 'treatment', weight: 0.5 }],
    ...body,
  }))
  return draft ? e : startExperiment(sql, who(tenant), e.id)
}

/** One row in each experiments table, for the RLS test. */
export async function populateExperimentsRows(sql: Sql, tenant: TestTenant): Promise<void> {
  const e = await makeExperiment(sql, tenant)
  const [a, b] = await withTenant(sql, tenant.id, async (tx) => [await makeLead(tx, tenant.id), await makeLead(tx, tenant.id)])
  await assign(sql, tenant.id, { leadId: a!.id, attributes: {}, source: 'api' })
  await withTenant(sql, tenant.id, async (tx) => {
    await tx`
      insert into experiments.exposures (tenant_id, experiment_id, phase, unit_id, lead_id, variation_key, source)
      values (${tenant.id}, ${e.id}, 1, ${a!.id}, ${a!.id}, 'control', 'flow')`
    await tx`
      insert into experiments.pending_exposures (tenant_id, wamid, experiment_id, phase, unit_id, lead_id, variation_key)
      values (${tenant.id}, ${`wamid.rows-${tenant.id}`}, ${e.id}, 1, ${a!.id}, ${a!.id}, 'control')`
    await tx`
      insert into experiments.assignment_conflicts (tenant_id, experiment_id, phase, lead_id, merged_lead_id, kept_unit_id, kept_variation_key, dropped_unit_id, dropped_variation_key, reason)
      values (${tenant.id}, ${e.id}, 1, ${a!.id}, ${b!.id}, ${a!.id}, 'control', ${b!.id}, 'treatment', 'merge')`
  })
  // The assignment and exposure above queued their persons (experiments.result_queue); the upkeep recomputes them
  // (experiments.result_units, appending result_deltas) and folds the deltas into result_totals.
  await maintainResults(sql, { tenantIds: [tenant.id] })
  // One change after the fold, recomputed but not folded, so result_deltas holds a row too; and one more, left queued.
  await withTenant(sql, tenant.id, (tx) => tx`
    insert into experiments.exposures (tenant_id, experiment_id, phase, unit_id, lead_id, variation_key, source)
    values (${tenant.id}, ${e.id}, 1, ${b!.id}, ${b!.id}, 'treatment', 'flow')`)
  await withTenant(sql, tenant.id, (tx) => drainResultQueue(tx, 100))
  await withTenant(sql, tenant.id, (tx) => tx`
    insert into experiments.exposures (tenant_id, experiment_id, phase, unit_id, lead_id, variation_key, source)
    values (${tenant.id}, ${e.id}, 1, ${a!.id}, ${a!.id}, 'treatment', 'flow')`)
}

/** Phase counts in a form two reads can be compared by (numbers, empty rows dropped, a fixed order). */
export const comparablePhaseCounts = (rows: PhaseCount[]) =>
  rows.map((r) => ({ kind: r.kind, variationKey: r.variationKey, ord: r.ord ?? null, n: r.n, total: r.kind === 'goal' ? Number(r.total) : null, totalSq: r.kind === 'goal' ? Number(r.totalSq) : null }))
    .filter((r) => r.n !== 0)
    .sort((a, b) => `${a.kind}:${a.variationKey}:${a.ord}`.localeCompare(`${b.kind}:${b.variationKey}:${b.ord}`))
