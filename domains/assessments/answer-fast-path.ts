import { type AnswerBody, KEY } from './schemas.js'

/** Limits of AnswerBody (schemas.ts): the same numbers, checked here without zod. */
const TEXT_MAX = 2000
const OPTION_MAX = 64
const OPTIONS_MAX = 30
const RESPONSE_MS_MAX = 24 * 3600 * 1000

const isPlain = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v) as object | null
  return proto === null || proto === Object.prototype
}

/** AnswerValue's members as zod takes them: text up to 2,000, a finite number, a boolean, null, up to 30 short strings. */
function fastValue(v: unknown): AnswerBody['value'] | undefined {
  if (typeof v === 'string') return v.length <= TEXT_MAX ? v : undefined
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined
  if (typeof v === 'boolean' || v === null) return v
  if (!Array.isArray(v) || v.length > OPTIONS_MAX) return undefined
  for (const x of v) if (typeof x !== 'string' || x.length > OPTION_MAX) return undefined
  return v.slice()
}

/**
 * The answer body's common case without zod: exactly AnswerBody's shape (no other key, each value of its type and
 * within its limits) comes out as the value `AnswerBody.parse` would return. Anything else returns null and the route
 * parses the body with zod, which refuses it with the field paths as before (or, for a shape this function does not
 * know, accepts it): this only ever decides "certainly valid", never how input is wrong. zod's union for the value
 * tries each member in turn and builds an issue for each that does not fit (a number or a list fails the text member
 * first), which made the body's validation several times the cost of its JSON parse; answer-fast-path.test.ts holds
 * the two to the same answers.
 */
export function fastAnswerBody(body: unknown): AnswerBody | null {
  if (!isPlain(body)) return null
  let questionId: unknown
  let value: unknown
  let responseMs: unknown
  let hasValue = false
  for (const k in body) {
    if (!Object.prototype.hasOwnProperty.call(body, k)) return null
    if (k === 'questionId') questionId = body[k]
    else if (k === 'value') { value = body[k]; hasValue = true }
    else if (k === 'responseMs') responseMs = body[k]
    else return null
  }
  if (typeof questionId !== 'string' || !KEY.test(questionId) || !hasValue) return null
  const checked = fastValue(value)
  if (checked === undefined) return null
  if (responseMs === undefined) return 'responseMs' in body ? null : { questionId, value: checked }
  if (typeof responseMs !== 'number' || !Number.isSafeInteger(responseMs) || responseMs < 0 || responseMs > RESPONSE_MS_MAX) return null
  return { questionId, value: checked, responseMs }
}

/** TokenParams (a session route's `:token`) without zod: a string of 1 to 200 characters; otherwise null (zod's). */
export function fastTokenParams(params: unknown): { token: string } | null {
  if (typeof params !== 'object' || params === null) return null
  const token = (params as { token?: unknown }).token
  return typeof token === 'string' && token.length >= 1 && token.length <= 200 ? { token } : null
}
