import type { Sql, Tx } from '../../../lib/db.js'

// The AI analysis's SQL (migration 0036): analyses, the pattern cache, provider calls and each tenant's settings.

export interface AnalysisRow {
  id: string
  resultId: string
  sessionId: string
  rubricVersion: number
  source: 'provider' | 'cache' | 'rules'
  fallbackReason: string | null
  provider: string
  model: string | null
  promptVersion: number
  narrative: string
  recommendations: string[]
  latencyMs: number | null
  createdAt: Date
}
const analysisColumns = (tx: Tx) => tx`
  id, result_id, session_id, rubric_version, source, fallback_reason, provider, model, prompt_version, narrative, recommendations, latency_ms, created_at`

export const findAnalysis = (tx: Tx, resultId: string) =>
  tx<AnalysisRow[]>`select ${analysisColumns(tx)} from assessments.analyses where result_id = ${resultId}`.then((r) => r[0] ?? null)

export const findAnalysisOfSession = (tx: Tx, sessionId: string) =>
  tx<AnalysisRow[]>`select ${analysisColumns(tx)} from assessments.analyses where session_id = ${sessionId}`.then((r) => r[0] ?? null)

/** One analysis per result; a re-scored result (a newer rubric version) replaces the older analysis, never the reverse. */
export const upsertAnalysis = (tx: Tx, a: {
  tenantId: string; resultId: string; sessionId: string; rubricVersion: number; patternHash: Buffer; source: AnalysisRow['source']
  fallbackReason: string | null; provider: string; model: string | null; promptVersion: number; narrative: string; recommendations: string[]; latencyMs: number | null
}) =>
  tx<AnalysisRow[]>`
    insert into assessments.analyses (tenant_id, result_id, session_id, rubric_version, pattern_hash, source, fallback_reason, provider, model,
                                      prompt_version, narrative, recommendations, latency_ms)
    values (${a.tenantId}, ${a.resultId}, ${a.sessionId}, ${a.rubricVersion}, ${a.patternHash}, ${a.source}, ${a.fallbackReason}, ${a.provider},
            ${a.model}, ${a.promptVersion}, ${a.narrative}, ${tx.json(a.recommendations)}, ${a.latencyMs})
    on conflict (result_id) do update
       set rubric_version = excluded.rubric_version, pattern_hash = excluded.pattern_hash, source = excluded.source,
           fallback_reason = excluded.fallback_reason, provider = excluded.provider, model = excluded.model,
           prompt_version = excluded.prompt_version, narrative = excluded.narrative, recommendations = excluded.recommendations,
           latency_ms = excluded.latency_ms, created_at = now()
     where assessments.analyses.rubric_version < excluded.rubric_version
    returning ${analysisColumns(tx)}`.then((r) => r[0] ?? null)

// ---------------------------------------------------------------------------------------------------------------
// The cache.

export interface CachedAnalysis { narrative: string; recommendations: string[]; provider: string; model: string | null; promptVersion: number }

/** A ready, unexpired entry, counted as a hit. */
export const hitCache = (tx: Tx, patternHash: Buffer) =>
  tx<CachedAnalysis[]>`
    update assessments.analysis_cache set hits = hits + 1, last_hit_at = now()
     where pattern_hash = ${patternHash} and status = 'ready' and expires_at > now()
    returning narrative, recommendations, provider, model, prompt_version`.then((r) => r[0] ?? null)

/**
 * Claims the pattern for one provider call: a new entry, an expired one, or a pending one left by a job that died
 * (claimed more than `staleSeconds` ago). False: another job is asking the provider for it right now.
 */
export const claimCache = (tx: Tx, e: { tenantId: string; patternHash: Buffer; provider: string; model: string | null; promptVersion: number; staleSeconds: number }) =>
  tx<{ claimed: boolean }[]>`
    insert into assessments.analysis_cache as c (tenant_id, pattern_hash, provider, model, prompt_version)
    values (${e.tenantId}, ${e.patternHash}, ${e.provider}, ${e.model}, ${e.promptVersion})
    on conflict (tenant_id, pattern_hash) do update
       set status = 'pending', claimed_at = now(), narrative = null, recommendations = null, expires_at = null, hits = 0
     where (c.status = 'ready' and c.expires_at <= now())
        or (c.status = 'pending' and c.claimed_at < now() - make_interval(secs => ${e.staleSeconds}))
    returning true as claimed`.then((r) => r.length > 0)

export const fillCache = (tx: Tx, patternHash: Buffer, a: { narrative: string; recommendations: string[] }, ttlSeconds: number) =>
  tx`
    update assessments.analysis_cache
       set status = 'ready', narrative = ${a.narrative}, recommendations = ${tx.json(a.recommendations)},
           created_at = now(), expires_at = now() + make_interval(secs => ${ttlSeconds})
     where pattern_hash = ${patternHash} and status = 'pending'`

/** The provider failed: the claim goes, so the next identical pattern may try again. */
export const releaseClaim = (tx: Tx, patternHash: Buffer) =>
  tx`delete from assessments.analysis_cache where pattern_hash = ${patternHash} and status = 'pending'`

/** Cross-tenant: up to `limit` expired entries and stale claims deleted (migration 0056); how many went. */
export const pruneCache = (sql: Sql | Tx, limit: number, staleSeconds: number) =>
  sql<{ n: number }[]>`select assessments.prune_analysis_cache(${limit}, ${staleSeconds}) as n`.then((r) => r[0]!.n)

export interface CacheStats { entries: number; ready: number; hits: number; expired: number }
export const cacheStats = (tx: Tx) =>
  tx<CacheStats[]>`
    select count(*)::int as entries, count(*) filter (where status = 'ready' and expires_at > now())::int as ready,
           coalesce(sum(hits), 0)::int as hits, count(*) filter (where status = 'ready' and expires_at <= now())::int as expired
      from assessments.analysis_cache`.then((r) => r[0]!)

export const analysisSourceCounts = (tx: Tx) =>
  tx<{ source: string; fallbackReason: string | null; n: number }[]>`
    select source, split_part(fallback_reason, ':', 1) as fallback_reason, count(*)::int as n
      from assessments.analyses group by 1, 2 order by 1, 2`

// ---------------------------------------------------------------------------------------------------------------
// Provider calls and the limits.

/**
 * Serialises the limit checks of one tenant's jobs: the count and the reservation below happen under it, so two
 * jobs cannot both see 49 calls and both make the 50th.
 */
export const lockTenantCalls = (tx: Tx) => tx`select pg_advisory_xact_lock(hashtextextended('assessments.ai_calls:' || core.current_tenant_id()::text, 0))`

/** Calls in the last hour: the participant's (the lead's, across its sessions; else the session's) and the tenant's. */
export const callsInLastHour = (tx: Tx, sessionId: string, leadId: string | null) =>
  tx<{ participant: number; tenant: number }[]>`
    select (select count(*)::int from assessments.ai_calls c
             where c.called_at > now() - interval '1 hour'
               and (c.session_id = ${sessionId}
                    or (${leadId}::uuid is not null and c.session_id in (select s.id from assessments.sessions s where s.lead_id = ${leadId}::uuid)))) as participant,
           (select count(*)::int from assessments.ai_calls c where c.called_at > now() - interval '1 hour') as tenant`.then((r) => r[0]!)

export const reserveCall = (tx: Tx, tenantId: string, sessionId: string) =>
  tx<{ id: string }[]>`insert into assessments.ai_calls (tenant_id, session_id) values (${tenantId}, ${sessionId}) returning id`.then((r) => r[0]!.id)

export const settleCall = (tx: Tx, id: string, c: { outcome: 'ok' | 'error'; latencyMs: number; promptTokens: number | null; completionTokens: number | null; error: string | null }) =>
  tx`update assessments.ai_calls set outcome = ${c.outcome}, latency_ms = ${c.latencyMs}, prompt_tokens = ${c.promptTokens},
                                     completion_tokens = ${c.completionTokens}, error = ${c.error}
      where id = ${id}`

export const callStats = (tx: Tx) =>
  tx<{ lastHour: number; ok: number; errors: number }[]>`
    select count(*) filter (where called_at > now() - interval '1 hour')::int as last_hour,
           count(*) filter (where outcome = 'ok')::int as ok, count(*) filter (where outcome = 'error')::int as errors
      from assessments.ai_calls`.then((r) => r[0]!)

// ---------------------------------------------------------------------------------------------------------------
// Settings.

export interface AiSettingsRow { enabled: boolean; callsPerHour: number | null; updatedAt: Date; updatedBy: string | null }

export const findAiSettings = (tx: Tx) =>
  tx<AiSettingsRow[]>`select enabled, calls_per_hour, updated_at, updated_by from assessments.ai_settings`.then((r) => r[0] ?? null)

export const upsertAiSettings = (tx: Tx, tenantId: string, s: { enabled: boolean; callsPerHour: number | null; updatedBy: string }) =>
  tx<AiSettingsRow[]>`
    insert into assessments.ai_settings (tenant_id, enabled, calls_per_hour, updated_at, updated_by)
    values (${tenantId}, ${s.enabled}, ${s.callsPerHour}, now(), ${s.updatedBy})
    on conflict (tenant_id) do update set enabled = excluded.enabled, calls_per_hour = excluded.calls_per_hour,
                                          updated_at = excluded.updated_at, updated_by = excluded.updated_by
    returning enabled, calls_per_hour, updated_at, updated_by`.then((r) => r[0]!)
