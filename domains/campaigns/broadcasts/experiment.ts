import type { Tx } from '../../../lib/db.js'
import { AppError } from '../../../lib/errors.js'
import type { ExperimentView } from '../../experiments/schemas.js'
import { findTemplateExperiment } from '../../experiments/service.js'
import { TemplateVariationValue } from '../../whatsapp/outbound/schemas.js'
import { checkTemplateParameters } from '../../whatsapp/outbound/template-params.js'
import { sampleComponents } from './params.js'
import * as q from './queries.js'
import { type ParameterMapping, ParameterMapping as ParameterMappingSchema } from './schemas.js'

/**
 * A broadcast naming an experiment whose variations are templates. Each variation may carry `value.template`
 * (`{ name?, language? }`, the same shape POST /v1/messages reads); what it leaves out is the broadcast's template. The
 * parameters are always the broadcast's mapping, rendered per recipient, so every variation's template must take them;
 * a variation giving its own `components` is refused (they would replace each recipient's values with fixed ones).
 */

export type VariationProblem = { code: 'NOT_FOUND' | 'UNPROCESSABLE' | 'BAD_REQUEST'; reason: string; message: string; details?: unknown }

/** The experiment's variations, each with the template it sends: the phase in force's. */
export interface ExperimentPlan {
  experiment: ExperimentView
  templates: Map<string, q.TemplateState>
}

/** `approved`: what saving a broadcast asks (as for its own template); `sendable`: what sending asks (also not PAUSED, DISABLED or quality RED). */
type Strictness = 'approved' | 'sendable'

/** Why a template cannot go out now, or null. */
/** Meta's template statuses after a deletion: the template cannot come back (nor its name, for 30 days). */
const DELETED_TEMPLATE = new Set(['DELETED', 'PENDING_DELETION'])

/**
 * Templates may go out only while Meta has them APPROVED and their quality is not RED. `final`: nothing can make this
 * template sendable again (it is deleted), so a sending broadcast fails instead of pausing (its own template; a
 * variation's is a problem of the experiment, which pauses).
 */
export function templateBlock(t: q.TemplateState | null): { reason: string; detail: string; final: boolean } | null {
  if (!t) return { reason: 'template_deleted', detail: 'the template no longer exists', final: true }
  if (DELETED_TEMPLATE.has(t.status)) return { reason: 'template_deleted', detail: `Meta deleted template ${t.name} (${t.language}) (${t.status})`, final: true }
  if (t.status === 'PAUSED') return { reason: 'template_paused', detail: `Meta paused template ${t.name} (${t.language}) for low quality`, final: false }
  if (t.status === 'DISABLED') return { reason: 'template_disabled', detail: `Meta disabled template ${t.name} (${t.language})`, final: false }
  if (t.status !== 'APPROVED') return { reason: 'template_not_approved', detail: `template ${t.name} (${t.language}) is ${t.status}`, final: false }
  if (t.qualityScore?.toUpperCase() === 'RED') return { reason: 'template_quality_red', detail: `template ${t.name} (${t.language}) has quality RED`, final: false }
  return null
}

/**
 * Every variation's template, found in the number's business account and checked: a template (not another value),
 * existing, APPROVED (or sendable), taking the broadcast's parameters. Problems are returned, not thrown: saving a
 * broadcast answers them as errors, the dispatcher pauses on them (a new phase can bring new variations).
 */
export async function planVariations(
  tx: Tx, e: ExperimentView, base: { name: string; language: string }, businessAccountId: string, mapping: ParameterMapping, strictness: Strictness,
): Promise<{ ok: true; plan: ExperimentPlan } | { ok: false; problem: VariationProblem }> {
  const fail = (problem: VariationProblem) => ({ ok: false as const, problem })
  if (e.unit !== 'lead') {
    return fail({ code: 'UNPROCESSABLE', reason: 'experiment_unit', message: `experiment ${e.key} assigns website visitors (unit ${e.unit}); a broadcast assigns leads` })
  }
  const sample = sampleComponents(mapping)
  const templates = new Map<string, q.TemplateState>()
  for (const v of e.variations) {
    const picked = TemplateVariationValue.safeParse(v.value ?? {})
    if (!picked.success) {
      return fail({ code: 'UNPROCESSABLE', reason: 'experiment_variation_invalid', message: `variation ${v.key} of experiment ${e.key} does not describe a template: ${picked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` })
    }
    if (picked.data.template?.components !== undefined) {
      return fail({ code: 'UNPROCESSABLE', reason: 'experiment_variation_invalid', message: `variation ${v.key} of experiment ${e.key} gives template components; a broadcast's parameters come from its own mapping, per recipient` })
    }
    const name = picked.data.template?.name ?? base.name
    const language = picked.data.template?.language ?? base.language
    const t = await q.findTemplateByName(tx, businessAccountId, name, language)
    const which = `variation ${v.key} of experiment ${e.key}: template ${name} (${language})`
    if (!t) return fail({ code: 'NOT_FOUND', reason: 'variation_template_missing', message: `${which} not found for this number's business account` })
    if (strictness === 'approved' && t.status !== 'APPROVED') {
      return fail({ code: 'UNPROCESSABLE', reason: 'variation_template_not_approved', message: `${which} is ${t.status}; only APPROVED templates can be broadcast`, details: { variationKey: v.key, templateStatus: t.status } })
    }
    const block = strictness === 'sendable' ? templateBlock(t) : null
    if (block) return fail({ code: 'UNPROCESSABLE', reason: `variation_${block.reason}`, message: `variation ${v.key} of experiment ${e.key}: ${block.detail}`, details: { variationKey: v.key } })
    const issues = checkTemplateParameters(t.components, sample)
    if (issues.length > 0) {
      return fail({
        code: 'BAD_REQUEST', reason: 'variation_parameters_mismatch', message: `the parameters do not fit template ${name} of variation ${v.key}: ${issues.map((i) => i.message).join('; ')}`,
        details: issues.map((i) => ({ in: 'body', path: 'parameters', message: `variation ${v.key} (${name}): ${i.message}` })),
      })
    }
    templates.set(v.key, t)
  }
  return { ok: true, plan: { experiment: e, templates } }
}

/** A problem as the API answers it: field issues for a 400, else `details.reason` (and what else the problem names). */
export const problemError = (p: VariationProblem) =>
  new AppError(p.code, p.message, { details: Array.isArray(p.details) ? p.details : { reason: p.reason, ...(p.details as object | undefined) } })

/** Saving a broadcast that names an experiment by key: it must exist here and its variations must be templates it can send. */
export async function resolveBroadcastExperiment(tx: Tx, key: string, base: { name: string; language: string }, businessAccountId: string, mapping: ParameterMapping): Promise<ExperimentView> {
  const e = await findTemplateExperiment(tx, { key })
  if (!e) throw new AppError('NOT_FOUND', `experiment ${key} not found`)
  const checked = await planVariations(tx, e, base, businessAccountId, mapping, 'approved')
  if (!checked.ok) throw problemError(checked.problem)
  return e
}

/**
 * The experiment a saved broadcast names, as it sends now: null when it names none, or when the experiment was
 * deleted since (whoever is left gets the broadcast's own template); a problem when it cannot send (a draft
 * experiment, a variation's template paused or not APPROVED, a new phase's variation that does not fit).
 */
export async function experimentPlanFor(tx: Tx, b: q.BroadcastRow, businessAccountId: string): Promise<{ ok: true; plan: ExperimentPlan } | { ok: false; problem: VariationProblem } | null> {
  if (!b.experimentId) return null
  const e = await findTemplateExperiment(tx, { id: b.experimentId })
  if (!e) return null
  if (e.status === 'draft') {
    return { ok: false, problem: { code: 'UNPROCESSABLE', reason: 'experiment_draft', message: `experiment ${e.key} is a draft; start it (POST /v1/experiments/${e.id}/start) before sending with it` } }
  }
  return planVariations(tx, e, { name: b.templateName, language: b.templateLanguage }, businessAccountId, ParameterMappingSchema.parse(b.parameters), 'sendable')
}
