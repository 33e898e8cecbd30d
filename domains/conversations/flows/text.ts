/**
 * Text helpers shared by the flow schema (validation) and the interpreter (rendering, matching).
 * Pure: no I/O, no locale lookups beyond Unicode normalization.
 */

/** Lowercase, accents stripped, whitespace collapsed and trimmed: how replies are compared to titles and keywords. */
export const foldText = (text: string) =>
  text.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().replace(/\s+/g, ' ').trim()

/** `foldText` plus surrounding punctuation and symbols removed, so "STOP!" and "Promo." compare as words. */
export const foldWord = (text: string) => foldText(text).replace(/^[\p{P}\p{S}\s]+|[\p{P}\p{S}\s]+$/gu, '')

/** Answer keys and custom lead field names: safe as JSON keys, template paths and column-ish names. */
export const KEY_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,63}$/

/** Lead attributes every lead has; any other key in `{{lead.x}}` or a condition reads `lead.fields[x]`. */
export const STANDARD_LEAD_FIELDS = ['name', 'email', 'phone', 'company', 'status'] as const

export type PlaceholderPath = { scope: 'lead'; field: string } | { scope: 'answers'; key: string }

export interface Placeholder {
  raw: string
  path: string
  fallback?: string
}

// `{{ lead.name }}`, `{{answers.service}}`, `{{lead.name|there}}` (text after `|` is used when the value is empty).
const PLACEHOLDER = /\{\{\s*([^{}|]*?)\s*(?:\|([^{}]*))?\}\}/g

export function findPlaceholders(template: string): Placeholder[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => ({
    raw: m[0],
    path: m[1] ?? '',
    ...(m[2] !== undefined ? { fallback: m[2].trim() } : {}),
  }))
}

export function parsePlaceholderPath(path: string): PlaceholderPath | null {
  const [scope, key, ...rest] = path.split('.')
  if (rest.length > 0 || key === undefined || !KEY_PATTERN.test(key)) return null
  if (scope === 'lead') return { scope: 'lead', field: key }
  if (scope === 'answers') return { scope: 'answers', key }
  return null
}

/** Replaces each placeholder with `resolve(path)`, its fallback, or nothing. Unknown paths render empty too. */
export function renderTemplate(template: string, resolve: (path: PlaceholderPath) => string | undefined): string {
  return template.replace(PLACEHOLDER, (_raw, rawPath: string, fallback: string | undefined) => {
    const path = parsePlaceholderPath(rawPath)
    const value = path ? resolve(path) : undefined
    return value !== undefined && value !== '' ? value : (fallback?.trim() ?? '')
  })
}
