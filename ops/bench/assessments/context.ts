import { withTenant } from '../../../lib/db.js'
import { CreateAssessmentBody } from '../../../domains/assessments/schemas.js'
import { HEALTH_DEFINITION } from '../../../domains/assessments/sample-definitions.js'
import { createAssessmentIn, publishDraftIn } from '../../../domains/assessments/service.js'
import type { BenchDatabase } from '../harness.js'

/** What the sections share: one tenant with the health check published. */
export interface BenchContext { tenantId: string; healthId: string; healthPublicKey: string }

export async function setUpAssessments(db: BenchDatabase): Promise<BenchContext> {
  const [tenant] = await db.owner<{ id: string }[]>`insert into core.tenants (name, slug) values ('Bench', ${`bench-${Date.now()}`}) returning id`
  const tenantId = tenant!.id
  const who = { tenantId, actor: 'bench', requestId: null }
  const a = await withTenant(db.sql, tenantId, async (tx) => {
    const created = await createAssessmentIn(tx, who, CreateAssessmentBody.parse({ key: 'health_check', type: 'health', name: 'Health check', definition: HEALTH_DEFINITION }))
    await publishDraftIn(tx, who, created.id)
    return created
  })
  return { tenantId, healthId: a.id, healthPublicKey: a.publicKey }
}
