import type { Task } from 'graphile-worker'
import { providerFrom, type AnalysisProvider } from '../../../domains/assessments/ai/providers.js'
import { analyzeResult } from '../../../domains/assessments/ai/service.js'
import { AnalyzeResultPayload } from '../../../domains/assessments/schemas.js'
import type { TaskDeps } from './task-deps.js'

/**
 * A completed session's AI analysis (enqueued by the completion, in its transaction): cached by pattern, within the
 * participant's and the tenant's limits, the rules when the provider is not configured, over a limit, or failing.
 * Idempotent: an analysis already stored for the result's rubric version ends the job. Another job asking the
 * provider about the same pattern makes this one fail and retry (a cache hit by then).
 */
export const analyzeResultTask = (deps: TaskDeps, provider: AnalysisProvider = providerFrom(deps.config)): Task => async (payload, helpers) => {
  const { tenantId, resultId } = AnalyzeResultPayload.parse(payload)
  const outcome = await analyzeResult({ sql: deps.sql, provider, config: deps.config }, tenantId, resultId)
  helpers.logger.debug(`assessment result ${resultId}: analysis ${outcome}`)
}
