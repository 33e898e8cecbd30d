import pino, { type Logger } from 'pino'

const SENSITIVE_QUERY = /token|secret|key|challenge|signature|password/i

/** Request URLs can carry secrets in their query (Meta's hub.verify_token): keep the names, drop the values. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?')
  if (q === -1) return url
  const params = new URLSearchParams(url.slice(q + 1))
  for (const name of [...params.keys()]) if (SENSITIVE_QUERY.test(name)) params.set(name, '[redacted]')
  return `${url.slice(0, q)}?${params.toString()}`
}

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
      err: pino.stdSerializers.err,
    },
  }, options.destination)
}
export type { Logger }
