import pino, { type Logger } from 'pino'

/**
 * Logs carry ids, never people. Query strings hold secrets (Meta's hub.verify_token) and personal data (a lead
 * search `?q=+5215599990000` or `?q=ana@example.com`), so every value is replaced and only the parameter names are
 * kept; a name that is not a plain identifier is replaced too (`?ana@example.com` has no value, only a name).
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?')
  if (q === -1) return redactPathSecrets(url)
  const names = url
    .slice(q + 1)
    .split('&')
    .filter((part) => part !== '')
    .map((part) => {
      const raw = part.split('=', 1)[0]!
      let name: string
      try {
        name = decodeURIComponent(raw.replace(/\+/g, ' '))
      } catch {
        name = ''
      }
      return `${PLAIN_NAME.test(name) ? name : '[redacted]'}=[redacted]`
    })
  return `${redactPathSecrets(url.slice(0, q))}?${names.join('&')}`
}

/** Path segments that are credentials: an onboarding session token (/onboarding/sessions/<token>/…). */
const redactPathSecrets = (path: string) =>
  path.replace(/^(\/onboarding\/sessions\/)[^/?#]+/, '$1[redacted]').replace(/^(\/assessments\/sessions\/)[^/?#]+/, '$1[redacted]')
const PLAIN_NAME = /^[A-Za-z_][A-Za-z0-9_.[\]-]{0,63}$/

/**
 * Fields of errors that copy the data a statement was about: PostgreSQL's DETAIL ("Key (phone_e164)=(+52…) already
 * exists", "Failing row contains (…)") and WHERE, postgres.js's query text and parameters (enumerable in debug mode),
 * graphile-worker's job payloads. The message, code, constraint and stack stay: they are what an operator needs.
 */
const ERROR_FIELDS_WITH_DATA = ['detail', 'where', 'parameters', 'args', 'query', 'payload', 'input', 'body', 'hint', 'internal_query']

export function serializeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: typeof err === 'string' ? err : 'non-error thrown' }
  const out = pino.stdSerializers.err(err) as unknown as Record<string, unknown>
  for (const field of ERROR_FIELDS_WITH_DATA) delete out[field]
  if (out.cause && typeof out.cause === 'object') {
    for (const field of ERROR_FIELDS_WITH_DATA) delete (out.cause as Record<string, unknown>)[field]
  }
  return out
}

/**
 * A last net under the rules above, on the finished line: an e-mail address, or a phone number written with its
 * "+" (raw or URL-encoded), that reached a log line anyway is masked. It cannot catch a bare wa_id (it looks like
 * any other number, and Meta's ids are numbers too), a name or a message: those are kept out by never logging
 * bodies, payloads, job keys or query values, and the PII logging test checks that they are.
 */
const EMAIL = /[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g
const PLUS_PHONE = /(?:\+|%2B)\d{7,15}(?!\d)/gi
export function maskPersonalData(line: string): string {
  if (line.indexOf('@') === -1 && line.indexOf('%40') === -1 && line.indexOf('+') === -1 && line.indexOf('%2') === -1) return line
  return line.replace(EMAIL, '[email]').replace(PLUS_PHONE, '[phone]')
}

const SERVICE_BINDING = '"service":'

export function createLogger(options: { level: string; service: string; destination?: pino.DestinationStream }): Logger {
  return pino({
    level: options.level,
    base: { service: options.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Bodies are never logged (they hold leads' messages); headers only as a safety net if someone adds them.
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-hub-signature-256"]', '*.accessToken', '*.appSecret', '*.password', 'body'],
      censor: '[redacted]',
    },
    serializers: {
      req: (req: { method?: string; url?: string; ip?: string; id?: string }) => ({ method: req.method, url: req.url ? redactUrl(req.url) : undefined, ip: req.ip }),
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
      err: serializeError,
    },
    hooks: { streamWrite: maskPersonalData },
    // pino appends a child's bindings to its parent's, so `log.child({ service: 'api' })` under a logger created
    // for another service wrote "service" twice on every line. The child's name replaces the parent's.
    onChild: (child) => {
      const chindings = (child as unknown as Record<symbol, string | undefined>)[pino.symbols.chindingsSym] ?? ''
      const first = chindings.indexOf(SERVICE_BINDING)
      if (first === -1 || chindings.indexOf(SERVICE_BINDING, first + 1) === -1) return
      // JSON.parse keeps the last of repeated keys: the child's. (Not child.bindings(): it drops pid and hostname.)
      const bindings = JSON.parse(`{${chindings.slice(1)}}`) as Record<string, unknown>
      ;(child as unknown as Record<symbol, string>)[pino.symbols.chindingsSym] = ''
      child.setBindings(bindings)
    },
  }, options.destination)
}
export type { Logger }
