import type { Sql } from '../../lib/db.js'
import { populateAnalyticsRows } from './analytics-rows.js'
import { populateAssessmentsRows } from './assessments-rows.js'
import { populateAssessmentPartnersRows } from './assessment-partners-rows.js'
import { populateCampaignsRows } from './campaigns-rows.js'
import { populateBroadcastRows } from './broadcasts-rows.js'
import { populateConversationsRows } from './conversations-rows.js'
import { populateExperimentsRows } from './experiments-rows.js'
import { populateMarketingRows } from './marketing-rows.js'
import { populateMediaPlansRows } from './media-plans-rows.js'
import { populatePrivacyExportRows } from './privacy-export-rows.js'
import { populatePrivacyErasureRows } from './privacy-rows.js'
import { populateQueryRows } from './query-rows.js'
import { populateReportRows } from './report-rows.js'
import type { TestTenant } from './tenants.js'
import { populateWhatsappRows } from './whatsapp-rows.js'
import { populateOnboardingRows } from './onboarding-rows.js'

/**
 * Puts at least one row in every tenant-owned table for `tenant`. The catalog-driven RLS test calls it for two
 * tenants and fails for any tenant table left empty, so a new table must get its rows here (through its
 * domain's factory file) to be proven isolated. makeTenant already fills core.tenants, api_keys and audit_log.
 */
export async function populateTenantRows(sql: Sql, tenant: TestTenant): Promise<void> {
  await populateWhatsappRows(sql, tenant)
  await populateMarketingRows(sql, tenant)
  await populateConversationsRows(sql, tenant)
  await populatePrivacyExportRows(sql, tenant)
  await populatePrivacyErasureRows(sql, tenant)
  await populateAnalyticsRows(sql, tenant)
  await populateOnboardingRows(sql, tenant)
  await populateExperimentsRows(sql, tenant)
  await populateQueryRows(sql, tenant)
  await populateAssessmentsRows(sql, tenant)
  await populateAssessmentPartnersRows(sql, tenant)
  await populateCampaignsRows(sql, tenant)
  await populateMediaPlansRows(sql, tenant)
  await populateBroadcastRows(sql, tenant)
  await populateReportRows(sql, tenant)
}
