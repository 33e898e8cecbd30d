import type { FastifyInstance, FastifyRequest } from 'fastify'
import { AppError } from '../errors.js'

/**
 * How deep a request body may nest (objects and arrays, the outermost counting as one). No form or API body comes
 * near it; far deeper values overflow recursive code further on (JSON.stringify, zod, PostgreSQL's jsonb input,
 * which fails with "stack depth limit exceeded"), turning a bad request into a 500.
 */
export const MAX_BODY_DEPTH = 64

/** Problems reported per request at most: enough to fix a payload, bounded for a hostile one. */
export const MAX_REPORTED = 5

export interface UnstorableText {
  /** Dotted path to the value (`answers.name`, `items.0`); '' for the value itself. */
  path: string
  reason: string
}

export interface FindOptions {
  maxDepth?: number
  maxFindings?: number
}

const NUL = 'contains a NUL character (\\u0000), which cannot be stored'
const LONE_SURROGATE = 'contains a lone surrogate, which is not valid Unicode'
const KEY = 'has a field name that '

// One scan per string: almost no string has any of these, and only one that does is looked at again (natively).
const SUSPECT = /[\u0000\ud800-\udfff]/

// ES2024, native since Node 20 (V8 11.1); TypeScript's ES2023 lib does not declare it yet.
const isWellFormed = (String.prototype as unknown as { isWellFormed: (this: string) => boolean }).isWellFormed

/** Why a string cannot be stored as text or jsonb: a NUL, or a surrogate that is not half of a valid pair. */
function textProblem(text: string): string | null {
  const at = text.search(SUSPECT)
  if (at === -1) return null
  if (text.indexOf('\u0000', at) !== -1) return NUL
  return isWellFormed.call(text) ? null : LONE_SURROGATE
}

/** An object as parsers make them: literal, prototype-less, or (find-my-way's params) a prototype-less class. */
const isPlainObject = (value: object): value is Record<string, unknown> => {
  const proto = Object.getPrototypeOf(value) as object | null
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null
}

/** textProblem(text) === null, without a regular expression: two native scans, cheaper on the usual short strings. */
const storableText = (text: string) => text.indexOf('\u0000') === -1 && isWellFormed.call(text)

/**
 * True exactly when findUnstorableText would find nothing: the same cases (strings and keys checked, containers
 * beyond maxDepth refused, anything not a plain object or array not looked into), with no path kept. `for…in` may
 * also visit inherited enumerable keys (a polluted prototype), which can only send the value to the full walk.
 */
function isStorable(v: unknown, depth: number, maxDepth: number): boolean {
  if (typeof v === 'string') return storableText(v)
  if (typeof v !== 'object' || v === null) return true
  if (Array.isArray(v)) {
    if (depth >= maxDepth) return false
    for (let i = 0; i < v.length; i++) if (!isStorable(v[i], depth + 1, maxDepth)) return false
    return true
  }
  if (!isPlainObject(v)) return true
  if (depth >= maxDepth) return false
  for (const key in v) if (!storableText(key) || !isStorable(v[key], depth + 1, maxDepth)) return false
  return true
}

/** A bad key as it appears in a reported path: escaped as JSON would, so the path itself is clean text. */
const showKey = (key: string) => JSON.stringify(key).slice(1, -1)

/**
 * Everything in a parsed value (a JSON body, a form body, a query string, route params) that PostgreSQL cannot
 * store or that is not valid Unicode: NUL characters and lone surrogates in keys and string values, and nesting
 * deeper than maxDepth. One walk; only plain objects, arrays and strings are looked into (a Buffer is raw bytes,
 * left to its route). Returns at most maxFindings problems, first ones first; [] when the value is clean.
 */
export function findUnstorableText(value: unknown, options: FindOptions = {}): UnstorableText[] {
  const maxDepth = options.maxDepth ?? MAX_BODY_DEPTH
  // Nearly every request is clean, and saying so needs no paths: one plain pass first, and only a value that fails it
  // is walked again to say where (half the CPU of the reporting walk on an event batch, measured in process).
  if (isStorable(value, 0, maxDepth)) return []
  const walk: Walk = { maxDepth, maxFindings: options.maxFindings ?? MAX_REPORTED, found: [], path: [] }
  walkValue(walk, value, 0)
  return walk.found
}

// The walk's state, passed along rather than closed over: every request's params, query and body go through here,
// and two closures per call (named by the TypeScript loader, which costs a defineProperty each) were most of the
// time spent on a small body.
interface Walk { maxDepth: number; maxFindings: number; found: UnstorableText[]; path: (string | number)[] }

const report = (w: Walk, reason: string) => w.found.push({ path: w.path.join('.'), reason })

// Recursion is bounded by maxDepth: a container beyond it is reported, not entered.
function walkValue(w: Walk, v: unknown, depth: number): void {
  if (typeof v === 'string') {
    const problem = textProblem(v)
    if (problem !== null) report(w, problem)
    return
  }
  if (typeof v !== 'object' || v === null) return
  const isArray = Array.isArray(v)
  if (!isArray && !isPlainObject(v)) return
  if (depth >= w.maxDepth) {
    report(w, `is nested deeper than ${w.maxDepth} levels`)
    return
  }
  if (isArray) {
    for (let i = 0; i < v.length && w.found.length < w.maxFindings; i++) {
      w.path.push(i)
      walkValue(w, v[i], depth + 1)
      w.path.pop()
    }
    return
  }
  for (const key of Object.keys(v)) {
    if (w.found.length >= w.maxFindings) return
    const keyProblem = textProblem(key)
    w.path.push(keyProblem === null ? key : showKey(key))
    if (keyProblem !== null) report(w, KEY + keyProblem)
    else walkValue(w, v[key], depth + 1)
    w.path.pop()
  }
}

type Part = 'body' | 'querystring' | 'params'

/** The product's 400 for a request part holding unstorable text: names every field found, like a validation error. */
export function unstorableTextError(part: Part, problems: UnstorableText[]): AppError {
  const details = problems.map((p) => ({ in: part, path: p.path, message: p.reason }))
  const where = (p: UnstorableText) => (p.path ? `${part}.${p.path}` : part)
  const first = problems[0]!
  const more = problems.length > 1 ? ` (and ${problems.slice(1).map(where).join(', ')})` : ''
  return new AppError('BAD_REQUEST', `invalid ${where(first)}: ${first.reason}${more}`, { details })
}

const check = (part: Part, value: unknown, maxDepth: number) => {
  const problems = findUnstorableText(value, { maxDepth })
  return problems.length === 0 ? null : unstorableTextError(part, problems)
}

/**
 * Refuses, with a 400 naming the field, any request whose route params, query string or parsed body holds text
 * PostgreSQL cannot store (NUL), invalid Unicode (a lone surrogate) or a body nested deeper than maxDepth, for every
 * route and every body parser (JSON, urlencoded forms). Params and query are checked in onRequest, registered before
 * any route's own hooks, because those may look them up (a public form's key); bodies in preValidation, right
 * after parsing and before schema validation. A raw body (a Buffer: the Meta webhook, whose signature covers the
 * bytes) is not looked into: its route decides what to do with it.
 */
export function registerStorableTextChecks(app: FastifyInstance, options: { maxDepth?: number } = {}): void {
  const maxDepth = options.maxDepth ?? MAX_BODY_DEPTH
  app.addHook('onRequest', (request: FastifyRequest, _reply, done) => {
    done(check('params', request.params, maxDepth) ?? check('querystring', request.query, maxDepth) ?? undefined)
  })
  app.addHook('preValidation', (request: FastifyRequest, _reply, done) => {
    const body = request.body
    done(typeof body === 'object' && body !== null ? (check('body', body, maxDepth) ?? undefined) : undefined)
  })
}
