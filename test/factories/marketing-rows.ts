import type { Sql } from '../../lib/db.js'
import type { TestTenant } from './tenants.js'

/** Rows for marketing tables not already filled by populateWhatsappRows (leads and interactions are). */
export async function populateMarketingRows(_sql: Sql, _tenant: TestTenant): Promise<void> {}
