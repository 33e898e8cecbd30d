import type { TemplateComponent } from '../graph/bodies.js'

/**
 * Checks a template send's parameters against the template as stored (Meta's component definitions), so a
 * mismatch is a clear 400 for the caller instead of a 132000/132012 from Meta after the message was queued.
 * Pure: the stored components are whatever Meta (or our create call) recorded, read leniently.
 */

export interface ParamIssue {
  path: string
  message: string
}

interface StoredComponent {
  type?: string
  format?: string
  text?: string
  buttons?: { type?: string; text?: string; url?: string }[]
}

// Positional {{1}} or named {{first_name}} variables, as Meta writes them.
const VARIABLE = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g
const variablesIn = (text: string | undefined) => new Set([...(text ?? '').matchAll(VARIABLE)].map((m) => m[1]!))

const asComponents = (stored: unknown): StoredComponent[] =>
  Array.isArray(stored) ? stored.filter((c): c is StoredComponent => typeof c === 'object' && c !== null) : []

export function checkTemplateParameters(stored: unknown, given: TemplateComponent[] | undefined): ParamIssue[] {
  const issues: ParamIssue[] = []
  const components = asComponents(stored)
  const byType = (type: string) => components.find((c) => c.type?.toUpperCase() === type)
  const sent = given ?? []
  const sentOf = <T extends TemplateComponent['type']>(type: T) => sent.filter((c): c is Extract<TemplateComponent, { type: T }> => c.type === type)

  // Header: a text header with a variable needs one text parameter; a media header needs its media.
  const header = byType('HEADER')
  const headerParams = sentOf('header')
  const format = header?.format?.toUpperCase()
  const needsHeader = header !== undefined && (format === 'TEXT' ? variablesIn(header.text).size > 0 : ['IMAGE', 'VIDEO', 'DOCUMENT'].includes(format ?? ''))
  if (headerParams.length > 1) issues.push({ path: 'template.components', message: 'at most one header component' })
  if (needsHeader && headerParams.length === 0) {
    issues.push({ path: 'template.components', message: `the template's header needs a ${format === 'TEXT' ? 'text' : format!.toLowerCase()} parameter` })
  } else if (!needsHeader && headerParams.length > 0) {
    issues.push({ path: 'template.components', message: "the template's header takes no parameter" })
  } else if (needsHeader) {
    const type = headerParams[0]!.parameters[0]!.type
    const expected = format === 'TEXT' ? 'text' : format!.toLowerCase()
    if (type !== expected) issues.push({ path: 'template.components', message: `the header parameter must be ${expected}, not ${type}` })
  }

  // Body: exactly one parameter per distinct variable.
  const expectedBody = variablesIn(byType('BODY')?.text).size
  const bodyParams = sentOf('body')
  if (bodyParams.length > 1) issues.push({ path: 'template.components', message: 'at most one body component' })
  const givenBody = bodyParams[0]?.parameters.length ?? 0
  if (givenBody !== expectedBody) {
    issues.push({ path: 'template.components', message: `the template's body has ${expectedBody} variable(s); ${givenBody} parameter(s) given` })
  }

  // Buttons: addressed by index; dynamic URL buttons and copy-code buttons need their parameter.
  const buttons = byType('BUTTONS')?.buttons ?? []
  const buttonParams = sentOf('button')
  const seen = new Set<number>()
  for (const b of buttonParams) {
    if (seen.has(b.index)) issues.push({ path: 'template.components', message: `button ${b.index} given twice` })
    seen.add(b.index)
    const def = buttons[b.index]
    if (!def) {
      issues.push({ path: 'template.components', message: `the template has no button ${b.index}` })
      continue
    }
    const expected = ({ QUICK_REPLY: 'quick_reply', URL: 'url', COPY_CODE: 'copy_code', FLOW: 'flow' } as Record<string, string>)[def.type?.toUpperCase() ?? '']
    if (expected !== b.subType) issues.push({ path: 'template.components', message: `button ${b.index} is ${def.type ?? 'unknown'}, not ${b.subType}` })
    if (def.type?.toUpperCase() === 'URL' && variablesIn(def.url).size === 0) {
      issues.push({ path: 'template.components', message: `button ${b.index} has a fixed URL and takes no parameter` })
    }
  }
  buttons.forEach((def, index) => {
    const type = def.type?.toUpperCase()
    const needed = (type === 'URL' && variablesIn(def.url).size > 0) || type === 'COPY_CODE'
    if (needed && !seen.has(index)) issues.push({ path: 'template.components', message: `button ${index} (${type}) needs a parameter` })
  })
  return issues
}

/** Marketing templates may not go to a lead who opted out (STOP). */
export const isMarketing = (category: string | null) => category?.toUpperCase() === 'MARKETING'
