import type { SessionStateView } from './schemas.js'

// zod's z.uuid() pattern (RFC 9562 variants, the nil and max ids), so the fast path takes exactly the ids zod takes.
const UUID = /^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$/
const ASSESSMENT_TYPES = new Set(['health', 'wealth', 'hybrid'])
const QUESTION_TYPES = new Set(['single_choice', 'multiple_choice', 'scale', 'number', 'text', 'yes_no'])
const STATUSES = new Set(['in_progress', 'completed', 'abandoned'])

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
const isInt = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v)
const isStr = (v: unknown) => typeof v === 'string'

/**
 * Whether `o`'s own keys come in `order` (the schema's order: zod writes an object's keys so and drops unknown ones)
 * with every one in `required`, each passing its check: such an object comes out of JSON.stringify with zod's bytes.
 */
function shaped(o: unknown, order: readonly string[], checks: Record<string, (v: unknown) => boolean>, required: readonly string[]): boolean {
  if (!isObj(o)) return false
  let at = 0
  let seen = 0
  for (const k in o) {
    while (at < order.length && order[at] !== k) at++
    if (at === order.length || !checks[k]!(o[k])) return false
    if (required.includes(k)) seen++
    at++
  }
  return seen === required.length
}

const OPTION = ['id', 'label']
const isOption = (v: unknown) => shaped(v, OPTION, { id: isStr, label: isStr }, OPTION)
const isOptions = (v: unknown) => Array.isArray(v) && v.every(isOption)
const isAnswerValue = (v: unknown) =>
  v === null || typeof v === 'boolean' || isNum(v) || (isStr(v) && (v as string).length <= 2000) ||
  (Array.isArray(v) && v.length <= 30 && v.every((x) => isStr(x) && (x as string).length <= 64))
const isNumberRecord = (v: unknown) => isObj(v) && Object.values(v).every(isNum)

const QUESTION_ORDER = ['id', 'type', 'text', 'help', 'required', 'options', 'min', 'max', 'step', 'unit', 'minSelections', 'maxSelections', 'maxLength']
const isQuestion = (v: unknown) => v === null || shaped(v, QUESTION_ORDER, {
  id: isStr, type: (t) => QUESTION_TYPES.has(t as string), text: isStr, required: (b) => typeof b === 'boolean', help: isStr, options: isOptions,
  min: isNum, max: isNum, step: isNum, unit: isStr, minSelections: isNum, maxSelections: isNum, maxLength: isNum,
}, ['id', 'type', 'text', 'required'])
const isMissing = (v: unknown) => Array.isArray(v) && v.every((f) => shaped(f, ['key', 'label', 'type', 'options'], { key: isStr, label: isStr, type: isStr, options: isOptions }, ['key', 'label', 'type']))
const RESULT = ['id', 'totalScore', 'categoryScores', 'formulaValues', 'band', 'bandLabel', 'recommendations', 'rubricVersion', 'computedAt']
const isResult = (v: unknown) => v === null || shaped(v, RESULT, {
  id: (x) => isStr(x) && UUID.test(x as string), totalScore: isNum, categoryScores: isNumberRecord, formulaValues: isNumberRecord,
  band: (x) => x === null || isStr(x), bandLabel: (x) => x === null || isStr(x), recommendations: (x) => Array.isArray(x) && x.every(isStr),
  rubricVersion: isInt, computedAt: (x) => x instanceof Date && !Number.isNaN(x.getTime()),
}, RESULT)
const STATE_ORDER = ['sessionId', 'assessment', 'version', 'status', 'progress', 'answered', 'total', 'question', 'currentAnswer', 'canGoBack', 'missingProfile', 'demographics', 'result']
const STATE_REQUIRED = STATE_ORDER.filter((k) => k !== 'currentAnswer')
const ASSESSMENT = ['key', 'name', 'type']
const STATE_CHECKS: Record<string, (v: unknown) => boolean> = {
  sessionId: (x) => isStr(x) && UUID.test(x as string),
  assessment: (a) => shaped(a, ASSESSMENT, { key: isStr, name: isStr, type: (t) => ASSESSMENT_TYPES.has(t as string) }, ASSESSMENT),
  version: isInt, status: (s) => STATUSES.has(s as string), progress: isInt, answered: isInt, total: isInt,
  question: isQuestion, canGoBack: (b) => typeof b === 'boolean', missingProfile: isMissing,
  // Values are the participant's (z.unknown): JSON.stringify writes them as zod's copy would be written.
  demographics: isObj, result: isResult, currentAnswer: isAnswerValue,
}

/**
 * A session's state as JSON without zod, when it is exactly the shape SessionStateView's serializer would write: the
 * same bytes (keys in the schema's order, no unknown key, every value of its type); otherwise null, and the route
 * serializes with zod as before (which refuses a wrong state with a 500). viewOf builds the state in that order, so
 * every answer takes this path; zod's encode of the state (a context per value, a copy of every object) was several
 * times the cost of writing its JSON. state-json.test.ts holds the two to the same bytes.
 */
export function fastStateJson(state: unknown): string | null {
  return shaped(state, STATE_ORDER, STATE_CHECKS, STATE_REQUIRED) ? JSON.stringify(state as SessionStateView) : null
}
