import type { FastifyRequest } from 'fastify'
import type { Redis } from 'ioredis'
import { safeEqual } from '../../../lib/crypto.js'
import { AppError } from '../../../lib/errors.js'
import type { App } from '../../../lib/http/create-server.js'
import { actorName } from '../../../domains/tenancy/service.js'
import type { ApiKeyCache } from '../../../domains/tenancy/key-cache.js'
import type { Principal } from '../../../domains/tenancy/schemas.js'
import type { Sql } from '../../../lib/db.js'
import type { Logger } from '../../../lib/logger.js'
import { createAuthFailureLimiter, credentialOf } from '../../../lib/http/auth-failures.js'
import { authenticatePartnerKey, looksLikePartnerKey, type PartnerPrincipal } from '../../../domains/assessments/partners/keys.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** A partner key's principal (access 'partner') beside the tenant and operator ones. */
    principal: Principal | PartnerPrincipal | null
  }
}

type TenantPrincipal = Principal & { kind: 'tenant' }

/** The tenant of an authenticated tenant route; the access hook has already guaranteed there is one. */
export function tenantOf(request: FastifyRequest): TenantPrincipal {
  const p = request.principal
  if (p?.kind !== 'tenant') throw new AppError('FORBIDDEN', 'this route needs a tenant API key')
  return p
}

/** Who acts, for audit entries and interactions: the tenant, the acting key (`api_key:<id>`) and the request id. */
export function actorOf(request: FastifyRequest): { tenantId: string; actor: string; requestId: string } {
  const principal = tenantOf(request)
  return { tenantId: principal.tenantId, actor: actorName(principal), requestId: request.id }
}

/** The partner of a partner route (access 'partner'); the access hook has already guaranteed there is one. */
export function partnerOf(request: FastifyRequest): PartnerPrincipal {
  const p = request.principal
  if (p?.kind !== 'partner') throw new AppError('FORBIDDEN', 'this route needs a partner key')
  return p
}

// One message for every authentication failure: it must not reveal whether a key, a tenant or a prefix exists.
const unauthorized = () =>
  new AppError('UNAUTHORIZED', 'missing or invalid API key', { headers: { 'www-authenticate': 'Bearer realm="api"' } })

/**
 * Authenticates in onRequest, before the body is read, so that an unauthenticated caller learns nothing about
 * validation and cannot make us parse large bodies. Routes say who may call them with `config.access`; a route
 * under /v1 that says nothing is a tenant route (read for GET/HEAD, write otherwise).
 */
export function registerAuth(app: App, deps: {
  /** Resolves tenant keys (in process, invalidated by NOTIFY; a wrong key is looked up every time). */
  keys: ApiKeyCache
  /** Partner keys are looked up every time (a partner portal is not a hot path). */
  sql: Sql
  operatorKey: string | undefined
  log: Logger
  /** Wrong keys presented per client IP per minute before that IP is answered 429 without a lookup. */
  failureLimitPerMinute: number
  redis?: Redis | null
}): void {
  const failures = createAuthFailureLimiter({ max: deps.failureLimitPerMinute, redis: deps.redis, log: deps.log })
  app.decorateRequest('principal', null)
  app.addHook('onRequest', async (request) => {
    const url = request.routeOptions.url
    // Unknown routes fall through to the 404 handler; routes outside /v1 (docs, health) are public unless they say.
    if (!url) return
    const access = request.routeOptions.config.access ??
      (!url.startsWith('/v1/') ? 'public' : ['GET', 'HEAD'].includes(request.method) ? 'tenant:read' : 'tenant:write')
    if (access === 'public') return

    const token = credentialOf(request.headers.authorization)
    if (!token) throw unauthorized()

    // Before anything is compared or looked up: an address that keeps presenting wrong keys is guessing them.
    // request.ip is the socket address unless TRUST_PROXY names the proxies allowed to set X-Forwarded-For.
    const wait = await failures.blockedFor(request.ip)
    if (wait > 0) {
      throw new AppError('RATE_LIMITED', `too many failed authentications from this address; retry in ${wait} s`, { headers: { 'retry-after': String(wait) } })
    }

    if (deps.operatorKey && safeEqual(token, deps.operatorKey)) {
      request.principal = { kind: 'operator' }
    } else if (looksLikePartnerKey(token)) {
      request.principal = await authenticatePartnerKey(deps.sql, token)
    } else {
      request.principal = await deps.keys.authenticate(token)
    }
    const principal = request.principal
    if (!principal) {
      await failures.recordFailure(request.ip)
      throw unauthorized()
    }

    // A partner key opens the partner routes only (its own data), never a tenant or operator route.
    if (access === 'partner') {
      if (principal.kind !== 'partner') throw new AppError('FORBIDDEN', 'this route needs a partner key')
      return
    }
    if (principal.kind === 'partner') throw new AppError('FORBIDDEN', 'a partner key opens only the /v1/partner routes')
    if (access === 'operator') {
      if (principal.kind !== 'operator') throw new AppError('FORBIDDEN', 'this route needs the operator key')
      return
    }
    if (principal.kind !== 'tenant') throw new AppError('FORBIDDEN', 'the operator key cannot act as a tenant; use a tenant API key')
    if (access === 'tenant:write' && principal.role !== 'admin') throw new AppError('FORBIDDEN', 'this API key is read-only')
  })
}
