import { z } from 'zod'

export const ERASE_SUBJECT_TASK = 'privacy__erase_subject'
/** A hold (deliveries about the subject not applied yet) is retried with graphile's backoff, then the request fails. */
export const ERASE_MAX_ATTEMPTS = 10

/** Exactly one of leadId, email, phone: the person to erase. */
export const CreateErasureBody = z
  .strictObject({
    leadId: z.uuid().optional(),
    email: z.string().trim().min(3).max(320).optional(),
    phone: z.string().trim().min(3).max(64).optional(),
  })
  .superRefine((body, ctx) => {
    const given = (['leadId', 'email', 'phone'] as const).filter((k) => body[k] !== undefined)
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: given.length > 1 ? [given[1]!] : [],
        message: given.length === 0 ? 'give exactly one of leadId, email or phone' : `give exactly one of leadId, email or phone, not ${given.join(' and ')}`,
      })
    }
  })
export type CreateErasureBody = z.infer<typeof CreateErasureBody>

/** The subject as the job needs it: sealed in the request row while the work runs, never logged. */
export const ErasureSubject = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('lead'), leadId: z.uuid() }),
  z.object({ kind: z.literal('email'), email: z.string() }),
  z.object({ kind: z.literal('phone'), phoneE164: z.string(), phoneKey: z.string() }),
])
export type ErasureSubject = z.infer<typeof ErasureSubject>

/** What a resumed job needs after the subject's leads are gone: the identity strings to search, sealed. */
export const SealedWork = z.object({
  subject: ErasureSubject,
  /** Lowercase identity strings (email, every stored phone form, wa_id) searched in content and by verification. */
  needles: z.array(z.string()).default([]),
  /** Identity keys for suppression, by kind. */
  keys: z.object({ emails: z.array(z.string()), phoneKeys: z.array(z.string()), waIds: z.array(z.string()) }).default({ emails: [], phoneKeys: [], waIds: [] }),
})
export type SealedWork = z.infer<typeof SealedWork>

export const EraseSubjectPayload = z.object({ tenantId: z.uuid(), requestId: z.uuid() })

export const ErasureStatus = z.enum(['pending', 'running', 'completed', 'failed'])

export const ReceiptLine = z.object({ table: z.string(), deleted: z.number().int(), anonymised: z.number().int() })

export const ErasureReceipt = z.object({
  tenantId: z.uuid(),
  /** Keyed hash (HMAC under the platform's secret) of the subject as requested: recognisable, not reversible. */
  subjectHash: z.string(),
  subjectKind: z.enum(['lead', 'email', 'phone']),
  tables: z.array(ReceiptLine),
  suppressedKeys: z.number().int(),
  startedAt: z.date().nullable(),
  completedAt: z.date(),
  /** When the verification pass found none of the subject's identity strings in any column of any table. */
  verifiedAt: z.date(),
})

export const ErasureRequestView = z.object({
  id: z.uuid(),
  status: ErasureStatus,
  subjectKind: z.enum(['lead', 'email', 'phone']),
  subjectHash: z.string(),
  requestedBy: z.string(),
  createdAt: z.date(),
  completedAt: z.date().nullable(),
  error: z.string().nullable(),
  receipt: ErasureReceipt.nullable(),
})
export type ErasureRequestView = z.infer<typeof ErasureRequestView>

export const ListErasuresQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  status: ErasureStatus.optional(),
})

export const SuppressionView = z.object({
  id: z.uuid(),
  keyKind: z.enum(['email', 'phone', 'wa_id']),
  keyHash: z.string(),
  erasureRequestId: z.uuid().nullable(),
  blockedSubmissions: z.number().int(),
  lastBlockedAt: z.date().nullable(),
  createdAt: z.date(),
})
export type SuppressionView = z.infer<typeof SuppressionView>

export const ListSuppressionsQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) })
