import type { Sql } from '../../lib/db.js'
import type { TestTenant } from './tenants.js'

/**
 * Puts at least one row in every tenant-owned table for `tenant`. The catalog-driven RLS test calls it for two
 * tenants and fails for any tenant table left empty, so a new table must get its rows here to be proven isolated.
 * makeTenant already fills core.tenants, core.api_keys and core.audit_log.
 */
export async function populateTenantRows(_sql: Sql, _tenant: TestTenant): Promise<void> {}
