import { withTenant, type Sql } from '../../lib/db.js'
import { keyHash } from '../../domains/privacy/suppression.js'
import type { TestTenant } from './tenants.js'

/** One row in each privacy table migration 0017 adds (an erasure request and a suppression), for the RLS test. */
export async function populatePrivacyErasureRows(sql: Sql, tenant: TestTenant): Promise<void> {
  const hash = keyHash('email', `rows-${tenant.id}@example.com`)
  await withTenant(sql, tenant.id, async (tx) => {
    const [request] = await tx<{ id: string }[]>`
      insert into privacy.erasure_requests (tenant_id, subject_kind, subject_hash, requested_by)
      values (${tenant.id}, 'email', ${hash}, 'test') returning id`
    await tx`
      insert into privacy.suppressions (tenant_id, key_kind, key_hash, erasure_request_id)
      values (${tenant.id}, 'email', ${hash}, ${request!.id})`
  })
}
