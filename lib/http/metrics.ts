import type { IncomingHttpHeaders } from 'node:http'
import type { Config } from '../config.js'
import { safeEqual } from '../crypto.js'
import { AppError } from '../errors.js'
import type { Logger } from '../logger.js'
import * as metrics from '../metrics.js'
import { type App, createHttpServer } from './create-server.js'
import { sendError } from './error-handler.js'

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/

export interface MetricsAccess {
  /** The TCP peer: a request relayed by a proxy on this host is still refused unless it carries the token. */
  socketAddress: string | undefined
  headers: IncomingHttpHeaders
}

/**
 * Who may read /metrics: loopback callers that did not come through a proxy (no forwarding headers), or anyone with
 * `Authorization: Bearer <METRICS_TOKEN>` when that is set. Metrics say nothing about people, but they do say how
 * busy each route and task is, which is nobody's business outside the operator's network.
 */
export function mayReadMetrics(access: MetricsAccess, token: string | undefined): boolean {
  if (token) {
    const given = access.headers.authorization
    if (typeof given === 'string' && /^bearer\s+/i.test(given) && safeEqual(given.replace(/^bearer\s+/i, '').trim(), token)) return true
  }
  const forwarded = access.headers['x-forwarded-for'] !== undefined || access.headers.forwarded !== undefined
  return !forwarded && access.socketAddress !== undefined && LOOPBACK.test(access.socketAddress)
}

/**
 * Request counts and latencies by route pattern and status, and GET /metrics (Prometheus text format). Registered
 * on the root instance before any route, so every route is counted; an unknown URL counts as "(unmatched)", never
 * as itself. A refused scrape is answered exactly like an unknown route (404).
 */
export function registerMetrics(app: App, options: { service: string; config: Pick<Config, 'METRICS_TOKEN'> }): void {
  metrics.enableProcessMetrics()
  // A callback hook, not an async one: it runs on every response, and a promise per request is measurable there.
  app.addHook('onResponse', (request, reply, done) => {
    const labels = { service: options.service, method: request.method, route: request.routeOptions.url ?? '(unmatched)', status: String(reply.statusCode) }
    metrics.httpRequests.inc(labels)
    metrics.httpRequestDuration.observe(labels, reply.elapsedTime / 1000)
    done()
  })
  // Scrapes every few seconds would drown the access log; they are counted above like any request.
  app.get('/metrics', { config: { access: 'public' }, logLevel: 'warn', schema: { hide: true } }, async (request, reply) => {
    if (!mayReadMetrics({ socketAddress: request.socket.remoteAddress, headers: request.headers }, options.config.METRICS_TOKEN)) {
      return sendError(reply, request, new AppError('NOT_FOUND', `no route GET ${request.url.split('?')[0]}`))
    }
    return reply.type(metrics.metricsContentType).send(await metrics.renderMetrics())
  })
}

/**
 * The worker has no HTTP service of its own: this small one serves /metrics (and /healthz) on METRICS_PORT, bound
 * to HOST like the others. METRICS_PORT=0 turns it off (`port` overrides the config; 0 there means any free port).
 * A port already taken is logged and the worker runs on without it: its jobs matter more than its metrics.
 */
export async function startMetricsServer(options: { config: Pick<Config, 'HOST' | 'METRICS_PORT' | 'METRICS_TOKEN' | 'TRUST_PROXY' | 'HTTP_HEADERS_TIMEOUT_MS' | 'HTTP_REQUEST_TIMEOUT_MS' | 'HTTP_KEEP_ALIVE_TIMEOUT_MS'>; log: Logger; service: string; port?: number }) {
  const port = options.port ?? options.config.METRICS_PORT
  if (port === 0 && options.port === undefined) return null
  const app = createHttpServer({ logger: options.log, bodyLimit: 1024, trustProxy: options.config.TRUST_PROXY, timeouts: options.config })
  registerMetrics(app, { service: options.service, config: options.config })
  app.get('/healthz', { config: { access: 'public' }, logLevel: 'warn', schema: { hide: true } }, async () => ({ status: 'ok' }))
  try {
    const url = await app.listen({ host: options.config.HOST, port })
    return { app, url, close: () => app.close() }
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE') throw err
    options.log.warn(`metrics port ${options.config.HOST}:${port} is in use; serving no metrics (set METRICS_PORT)`)
    await app.close()
    return null
  }
}
