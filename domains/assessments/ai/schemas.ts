import { z } from 'zod'

// The AI analysis's API shapes (routes in services/api/modules/assessment-ai and the public session route).

export const AnalysisView = z.object({
  status: z.enum(['pending', 'ready']),
  analysis: z.object({
    narrative: z.string(),
    recommendations: z.array(z.string()),
    source: z.enum(['provider', 'cache', 'rules']),
    fallbackReason: z.string().nullable(),
    provider: z.string(),
    model: z.string().nullable(),
    rubricVersion: z.number().int(),
    createdAt: z.date(),
  }).nullable(),
})

export const AiOverviewView = z.object({
  provider: z.object({ name: z.string(), model: z.string().nullable() }),
  enabled: z.boolean(),
  callsPerHour: z.number().int(),
  participantCallsPerHour: z.number().int(),
  cacheTtlSeconds: z.number().int(),
  cache: z.object({ entries: z.number().int(), ready: z.number().int(), hits: z.number().int(), expired: z.number().int() }),
  calls: z.object({ lastHour: z.number().int(), ok: z.number().int(), errors: z.number().int() }),
  analyses: z.array(z.object({ source: z.string(), fallbackReason: z.string().nullable(), n: z.number().int() })),
  updatedAt: z.date().nullable(),
  updatedBy: z.string().nullable(),
})

export const PutAiSettingsBody = z.strictObject({
  enabled: z.boolean(),
  /** Provider calls this tenant allows itself per sliding hour; null: the platform's AI_TENANT_CALLS_PER_HOUR. */
  callsPerHour: z.number().int().min(0).max(1_000_000).nullable().optional(),
})
export type PutAiSettingsBody = z.infer<typeof PutAiSettingsBody>

/** assessments__prune_analysis_cache takes no parameters (a cron task). */
export const PruneAnalysisCachePayload = z.object({}).loose()
