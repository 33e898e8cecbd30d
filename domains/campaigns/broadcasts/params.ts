import type { TemplateComponent } from '../../whatsapp/graph/bodies.js'
import type { ParameterMapping, ParameterSource } from './schemas.js'

/** The lead fields a template parameter can read (marketing.leads, as the audience query selects them). */
export interface LeadValues {
  name: string | null
  profileName: string | null
  company: string | null
  email: string | null
  phoneE164: string | null
  source: string | null
  status: string | null
  fields: Record<string, unknown> | null
}

export type Rendered = { ok: true; components: TemplateComponent[] } | { ok: false; reason: string }

const text = (v: unknown): string | null => {
  if (v === null || v === undefined) return null
  const s = typeof v === 'string' ? v.trim() : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null
  return s && s.length > 0 ? s : null
}

function readField(lead: LeadValues, field: string): string | null {
  switch (field) {
    case 'name': return text(lead.name) ?? text(lead.profileName)
    case 'first_name': return text((text(lead.name) ?? text(lead.profileName))?.split(/\s+/)[0])
    case 'profile_name': return text(lead.profileName)
    case 'company': return text(lead.company)
    case 'email': return text(lead.email)
    case 'phone': return text(lead.phoneE164)
    case 'source': return text(lead.source)
    case 'status': return text(lead.status)
    default: return field.startsWith('fields.') ? text(lead.fields?.[field.slice('fields.'.length)]) : null
  }
}

const describe = (s: ParameterSource) => ('value' in s ? 'a fixed value' : s.field)

/** One value: the lead's field, else the fallback; null when neither (the recipient is then refused). */
export function resolveParameter(lead: LeadValues, source: ParameterSource): string | null {
  if ('value' in source) return source.value
  // Meta refuses parameters with newlines, tabs or more than four spaces in a row (132018).
  const v = readField(lead, source.field)?.replace(/[\n\t]+/g, ' ').replace(/ {4,}/g, '   ') ?? null
  return v ?? source.fallback ?? null
}

/**
 * The template components for one recipient, or the reason they cannot get this template: a parameter with no value
 * and no fallback. Pure; the broadcast refuses such recipients before anything is sent.
 */
export function renderParameters(lead: LeadValues, mapping: ParameterMapping): Rendered {
  const components: TemplateComponent[] = []
  const missing: string[] = []
  const take = (where: string, source: ParameterSource) => {
    const v = resolveParameter(lead, source)
    if (v === null) missing.push(`${where} (${describe(source)})`)
    return v ?? ''
  }
  if (mapping.header) components.push({ type: 'header', parameters: [{ type: 'text', text: take('header', mapping.header) }] })
  if (mapping.body.length > 0) components.push({ type: 'body', parameters: mapping.body.map((s, i) => ({ type: 'text' as const, text: take(`body {{${i + 1}}}`, s) })) })
  for (const b of mapping.buttons) {
    const v = take(`button ${b.index}`, b.source)
    components.push(b.subType === 'url'
      ? { type: 'button', subType: 'url', index: b.index, parameters: [{ type: 'text', text: v }] }
      : { type: 'button', subType: 'copy_code', index: b.index, parameters: [{ type: 'coupon_code', coupon_code: v }] } as TemplateComponent)
  }
  if (missing.length > 0) return { ok: false, reason: `no value for ${missing.join(', ')}` }
  return { ok: true, components }
}

/** Components with placeholder values: checked against the template when the broadcast is saved. */
export const sampleComponents = (mapping: ParameterMapping): TemplateComponent[] => {
  const r = renderParameters({ name: 'x', profileName: 'x', company: 'x', email: 'x', phoneE164: 'x', source: 'x', status: 'x', fields: new Proxy({}, { get: () => 'x' }) }, mapping)
  return r.ok ? r.components : []
}
