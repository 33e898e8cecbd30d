import { z } from 'zod'

/** The job that writes an export's document (services/workers/tasks/privacy__export_subject.ts). */
export const EXPORT_SUBJECT_TASK = 'privacy__export_subject'
/** Nightly: retention periods applied per tenant (services/workers/tasks/privacy__apply_retention.ts). */
export const APPLY_RETENTION_TASK = 'privacy__apply_retention'

/**
 * The version of the export document's shape (README, Privacy): bump it when a key of the document changes meaning,
 * so whoever reads exports can tell old from new.
 */
export const EXPORT_SCHEMA_VERSION = 1

/** Exactly one way of naming the subject. Several, or none, is a 400 (a merged request could name two people). */
export const CreateExportBody = z.union([
  z.strictObject({ leadId: z.uuid() }),
  z.strictObject({ email: z.string().trim().min(3).max(320) }),
  z.strictObject({ phone: z.string().trim().min(3).max(64) }),
], { error: 'give exactly one of leadId, email or phone' })
export type CreateExportBody = z.infer<typeof CreateExportBody>

export const ExportParams = z.object({ exportId: z.uuid() })

export const ExportStatus = z.enum(['pending', 'running', 'ready', 'failed', 'expired'])

/** What GET answers until the document is ready (and after it expired). */
export const ExportView = z.object({
  id: z.uuid(),
  status: ExportStatus,
  subjectKind: z.enum(['lead', 'email', 'phone']),
  subjectHash: z.string(),
  createdAt: z.date(),
  readyAt: z.date().nullable(),
  expiresAt: z.date().nullable(),
  rowCounts: z.record(z.string(), z.number()).nullable(),
  bytes: z.number().nullable(),
  error: z.string().nullable(),
})
export type ExportView = z.infer<typeof ExportView>

export const CreatedExport = z.object({ id: z.uuid(), status: ExportStatus })

/** Job payload: ids only, never the subject (job payloads are visible to operators and tools). */
export const ExportSubjectPayload = z.object({ tenantId: z.uuid(), exportId: z.uuid() })
export type ExportSubjectPayload = z.infer<typeof ExportSubjectPayload>

// ---------------------------------------------------------------------------------------------------------
// Retention.

const days = (max: number) => z.number().int().min(1).max(max)

/** A tenant's retention periods in days; null: kept until the person is erased. */
export const RetentionSettings = z.object({
  analyticsEventsDays: days(3650),
  messagesDays: days(3650).nullable(),
  interactionsDays: days(3650).nullable(),
  exportsDays: days(30),
  /**
   * Partner-link clicks that never came to name a lead lose their network, address hash, user agent and referrer
   * after this many days (the click stays, for the counts); assessments__prune_click_details, hourly.
   */
  linkClickDetailsDays: days(3650),
})
export type RetentionSettings = z.infer<typeof RetentionSettings>

export const RetentionView = RetentionSettings.extend({
  /** Platform-wide (WEBHOOK_RETENTION_DAYS), read-only: a raw delivery is stored before anyone knows its tenant. */
  webhookDeliveriesDays: z.number().int(),
  /** False while the tenant has never changed anything: these are the defaults. */
  customised: z.boolean(),
  updatedAt: z.date().nullable(),
  updatedBy: z.string().nullable(),
})
export type RetentionView = z.infer<typeof RetentionView>

export const PatchRetentionBody = z.strictObject({
  analyticsEventsDays: days(3650).optional(),
  messagesDays: days(3650).nullable().optional(),
  interactionsDays: days(3650).nullable().optional(),
  exportsDays: days(30).optional(),
  linkClickDetailsDays: days(3650).optional(),
}).refine((b) => Object.keys(b).length > 0, { message: 'nothing to change' })
export type PatchRetentionBody = z.infer<typeof PatchRetentionBody>

export const RetentionRunView = z.object({
  id: z.string(),
  status: z.enum(['running', 'completed', 'incomplete']),
  settings: z.unknown(),
  removed: z.record(z.string(), z.number()),
  batches: z.number(),
  startedAt: z.date(),
  finishedAt: z.date().nullable(),
})
export type RetentionRunView = z.infer<typeof RetentionRunView>

export const ApplyRetentionPayload = z.object({}).loose()
