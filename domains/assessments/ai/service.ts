/**
 * The analysis of a result, as the job `assessments__analyze_result` runs it (never inside a request):
 *
 * 1. In one transaction: the result's pattern (pattern.ts); an analysis already there for this rubric version → done
 *    (the job is idempotent); the rules when no provider is configured or the tenant turned AI off; a ready cache
 *    entry → a 'cache' analysis and a hit; else the limits (participant: AI_RATE_LIMIT_PER_HOUR, tenant: its budget)
 *    under a per-tenant lock → the rules with the reason; else the pattern is claimed (single flight) and a call is
 *    reserved, and that is committed before anyone waits for the provider.
 * 2. The provider is asked, outside any transaction, with a timeout.
 * 3. In one transaction: the cache filled, the call settled, the analysis stored, or, when the provider failed, the
 *    claim released and the rules' analysis stored with the reason.
 *
 * Another job holding the same pattern's claim makes this one throw PatternInFlight: graphile-worker retries it a
 * few seconds later, when the entry is ready (a cache hit), instead of paying for the same answer twice.
 */
import type { Config } from '../../../lib/config.js'
import { withTenant, type Sql, type Tx } from '../../../lib/db.js'
import { AppError } from '../../../lib/errors.js'
import { insertAuditEntry } from '../../tenancy/queries.js'
import * as core from '../queries.js'
import { Demographics } from '../schemas.js'
import { compiledVersion, definitionOf } from '../service.js'
import { patternHash, patternOf, type Pattern, type PatternDetail } from './pattern.js'
import { type Analysis, type AnalysisProvider, ProviderError, ruleBasedProvider } from './providers.js'
import * as q from './queries.js'

export interface AnalysisDeps {
  sql: Sql
  provider: AnalysisProvider
  config: Pick<Config, 'AI_CACHE_TTL' | 'AI_RATE_LIMIT_PER_HOUR' | 'AI_TENANT_CALLS_PER_HOUR' | 'AI_PATTERN_DETAIL'>
}

export type AnalyzeOutcome = 'exists' | 'provider' | 'cache' | 'rules' | 'gone'

export class PatternInFlight extends Error {
  constructor() {
    super('another job is asking the AI provider about the same pattern; retried once it has answered')
    this.name = 'PatternInFlight'
  }
}

/** A claim older than this is a crashed job's (the provider timeout is at most 2 minutes). */
const STALE_CLAIM_SECONDS = 180

/**
 * Cross-tenant (assessments__prune_analysis_cache, hourly): expired cache entries and claims of jobs that died, in
 * batches of `batch` until none is left or `budgetMs` is spent. Nothing is lost: every analysis is kept with its
 * result (assessments.analyses); an entry only saves the next identical pattern a provider call within its TTL.
 */
export async function pruneAnalysisCache(sql: Sql, opts: { batch: number; budgetMs: number }): Promise<{ deleted: number; incomplete: boolean }> {
  const started = Date.now()
  let deleted = 0
  for (;;) {
    const n = await q.pruneCache(sql, opts.batch, STALE_CLAIM_SECONDS)
    deleted += n
    if (n < opts.batch) return { deleted, incomplete: false }
    if (Date.now() - started > opts.budgetMs) return { deleted, incomplete: true }
  }
}

interface Loaded {
  result: NonNullable<Awaited<ReturnType<typeof core.findResult>>>
  session: NonNullable<Awaited<ReturnType<typeof core.findSession>>>
  pattern: Pattern
  hash: Buffer
}

async function load(tx: Tx, resultId: string, provider: AnalysisProvider, detail: PatternDetail): Promise<Loaded | null> {
  const result = await core.findResult(tx, resultId)
  if (!result) return null
  const session = await core.findSession(tx, result.sessionId)
  if (!session) return null
  const assessment = await core.findAssessment(tx, result.assessmentId)
  const { version } = await compiledVersion(tx, result.scoredVersionId)
  const definition = definitionOf(version)
  const answers = Object.fromEntries((await core.loadResponses(tx, session.id)).answers)
  const pattern = patternOf({
    assessment: { type: assessment?.type ?? 'assessment', name: assessment?.name ?? '' },
    versionId: version.id, rubricVersion: result.rubricVersion,
    questions: definition.questions, categories: definition.categories, rubric: definition.rubric, profileFields: definition.profileFields,
    answers, demographics: Demographics.catch({}).parse(session.demographics ?? {}),
    result: { band: result.band, bandLabel: result.bandLabel, categoryScores: result.categoryScores, recommendations: result.recommendations },
  }, provider, detail)
  return { result, session, pattern, hash: patternHash(pattern) }
}

const store = (tx: Tx, l: Loaded, a: { source: 'provider' | 'cache' | 'rules'; fallbackReason?: string | null; provider: AnalysisProvider | { name: string; model: string | null }; analysis: Pick<Analysis, 'narrative' | 'recommendations'>; latencyMs?: number | null }) =>
  q.upsertAnalysis(tx, {
    tenantId: l.session.tenantId, resultId: l.result.id, sessionId: l.session.id, rubricVersion: l.result.rubricVersion, patternHash: l.hash,
    source: a.source, fallbackReason: a.fallbackReason ?? null, provider: a.provider.name, model: a.provider.model, promptVersion: l.pattern.promptVersion,
    narrative: a.analysis.narrative, recommendations: a.analysis.recommendations, latencyMs: a.latencyMs ?? null,
  })

async function rules(tx: Tx, l: Loaded, fallbackReason: string | null) {
  // The rules see the same pattern with their own name, so their text does not depend on the provider configured.
  const analysis = await ruleBasedProvider.analyze({ ...l.pattern, provider: ruleBasedProvider.name, model: null })
  await store(tx, l, { source: 'rules', fallbackReason, provider: ruleBasedProvider, analysis })
}

export async function analyzeResult(deps: AnalysisDeps, tenantId: string, resultId: string): Promise<AnalyzeOutcome> {
  const { provider } = deps
  type Step = { done: AnalyzeOutcome } | { ask: Loaded; callId: string }
  const step = await withTenant(deps.sql, tenantId, async (tx): Promise<Step> => {
    const l = await load(tx, resultId, provider, deps.config.AI_PATTERN_DETAIL)
    if (!l) return { done: 'gone' }
    const existing = await q.findAnalysis(tx, resultId)
    if (existing && existing.rubricVersion >= l.result.rubricVersion) return { done: 'exists' }
    const settings = await q.findAiSettings(tx)
    if (provider === ruleBasedProvider || settings?.enabled === false) {
      await rules(tx, l, provider === ruleBasedProvider ? null : 'disabled by the tenant')
      return { done: 'rules' }
    }
    const cached = await q.hitCache(tx, l.hash)
    if (cached) {
      await store(tx, l, { source: 'cache', provider: { name: cached.provider, model: cached.model }, analysis: cached })
      return { done: 'cache' }
    }
    await q.lockTenantCalls(tx)
    const calls = await q.callsInLastHour(tx, l.session.id, l.session.leadId)
    if (calls.participant >= deps.config.AI_RATE_LIMIT_PER_HOUR) {
      await rules(tx, l, `rate_limited: ${calls.participant} calls for this participant in the last hour (AI_RATE_LIMIT_PER_HOUR ${deps.config.AI_RATE_LIMIT_PER_HOUR})`)
      return { done: 'rules' }
    }
    const budget = settings?.callsPerHour ?? deps.config.AI_TENANT_CALLS_PER_HOUR
    if (calls.tenant >= budget) {
      await rules(tx, l, `budget_exhausted: ${calls.tenant} calls for this tenant in the last hour (budget ${budget})`)
      return { done: 'rules' }
    }
    const claimed = await q.claimCache(tx, { tenantId, patternHash: l.hash, provider: provider.name, model: provider.model, promptVersion: l.pattern.promptVersion, staleSeconds: STALE_CLAIM_SECONDS })
    if (!claimed) throw new PatternInFlight()
    return { ask: l, callId: await q.reserveCall(tx, tenantId, l.session.id) }
  })
  if ('done' in step) return step.done

  const l = step.ask
  const started = performance.now()
  let analysis: Analysis | null = null
  let failure: string | null = null
  try {
    analysis = await provider.analyze(l.pattern)
  } catch (err) {
    failure = err instanceof ProviderError ? err.message : `AI provider failed: ${err instanceof Error ? err.name : 'error'}`
  }
  const latencyMs = Math.round(performance.now() - started)

  await withTenant(deps.sql, tenantId, async (tx) => {
    if (analysis) {
      await q.fillCache(tx, l.hash, analysis, deps.config.AI_CACHE_TTL)
      await q.settleCall(tx, step.callId, { outcome: 'ok', latencyMs, promptTokens: analysis.usage?.promptTokens ?? null, completionTokens: analysis.usage?.completionTokens ?? null, error: null })
      await store(tx, l, { source: 'provider', provider, analysis, latencyMs })
    } else {
      await q.releaseClaim(tx, l.hash)
      await q.settleCall(tx, step.callId, { outcome: 'error', latencyMs, promptTokens: null, completionTokens: null, error: failure })
      await rules(tx, l, `provider_error: ${failure}`)
    }
  })
  return analysis ? 'provider' : 'rules'
}

// ---------------------------------------------------------------------------------------------------------------
// Views.

export interface AnalysisView {
  status: 'pending' | 'ready'
  analysis: {
    narrative: string
    recommendations: string[]
    source: 'provider' | 'cache' | 'rules'
    /** Why the rules answered instead of the provider (null when the rules are the configured provider). */
    fallbackReason: string | null
    provider: string
    model: string | null
    rubricVersion: number
    createdAt: Date
  } | null
}

export const analysisView = (a: q.AnalysisRow | null): AnalysisView => a
  ? { status: 'ready', analysis: { narrative: a.narrative, recommendations: a.recommendations, source: a.source, fallbackReason: a.fallbackReason, provider: a.provider, model: a.model, rubricVersion: a.rubricVersion, createdAt: a.createdAt } }
  : { status: 'pending', analysis: null }

/** An admin's view of one result's analysis; 404 when the result is not the tenant's (or not of that assessment). */
export const getResultAnalysis = (sql: Sql, tenantId: string, assessmentId: string, resultId: string): Promise<AnalysisView> =>
  withTenant(sql, tenantId, async (tx) => {
    const r = await core.findResult(tx, resultId)
    if (!r || r.assessmentId !== assessmentId) throw new AppError('NOT_FOUND', `result ${resultId} not found`)
    return analysisView(await q.findAnalysis(tx, resultId))
  })

/** The participant's view, inside their session's transaction (the token already checked by the caller). */
export const sessionAnalysis = async (tx: Tx, sessionId: string): Promise<AnalysisView> => analysisView(await q.findAnalysisOfSession(tx, sessionId))

export interface AiOverview {
  provider: { name: string; model: string | null }
  enabled: boolean
  callsPerHour: number
  participantCallsPerHour: number
  cacheTtlSeconds: number
  cache: q.CacheStats
  calls: { lastHour: number; ok: number; errors: number }
  analyses: { source: string; fallbackReason: string | null; n: number }[]
  updatedAt: Date | null
  updatedBy: string | null
}

export const getAiOverview = (deps: AnalysisDeps, tenantId: string): Promise<AiOverview> =>
  withTenant(deps.sql, tenantId, (tx) => overviewOf(tx, deps))

async function overviewOf(tx: Tx, deps: AnalysisDeps): Promise<AiOverview> {
  const s = await q.findAiSettings(tx)
  return {
    provider: { name: deps.provider.name, model: deps.provider.model },
    enabled: s?.enabled ?? true,
    callsPerHour: s?.callsPerHour ?? deps.config.AI_TENANT_CALLS_PER_HOUR,
    participantCallsPerHour: deps.config.AI_RATE_LIMIT_PER_HOUR,
    cacheTtlSeconds: deps.config.AI_CACHE_TTL,
    cache: await q.cacheStats(tx),
    calls: await q.callStats(tx),
    analyses: await q.analysisSourceCounts(tx),
    updatedAt: s?.updatedAt ?? null,
    updatedBy: s?.updatedBy ?? null,
  }
}

/** A tenant turns AI analysis off (the rules answer) or sets its own hourly budget (null: the platform's). Audited. */
export const putAiSettings = (deps: AnalysisDeps, who: { tenantId: string; actor: string; requestId: string | null }, body: { enabled: boolean; callsPerHour?: number | null }): Promise<AiOverview> =>
  withTenant(deps.sql, who.tenantId, async (tx) => {
    const before = await q.findAiSettings(tx)
    const callsPerHour = body.callsPerHour === undefined ? (before?.callsPerHour ?? null) : body.callsPerHour
    await q.upsertAiSettings(tx, who.tenantId, { enabled: body.enabled, callsPerHour, updatedBy: who.actor })
    await insertAuditEntry(tx, {
      tenantId: who.tenantId, actor: who.actor, action: 'assessments.ai_settings_changed', targetType: 'ai_settings', targetId: who.tenantId,
      details: { enabled: { from: before?.enabled ?? true, to: body.enabled }, callsPerHour: { from: before?.callsPerHour ?? null, to: callsPerHour } },
      requestId: who.requestId ?? undefined,
    })
    return overviewOf(tx, deps)
  })
