import rateLimit from '@fastify/rate-limit'
import type { Redis } from 'ioredis'
import type { Config } from '../../lib/config.js'
import type { Sql } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import { createHttpServer, type App } from '../../lib/http/create-server.js'
import { registerHealthRoutes } from '../../lib/http/health.js'
import { registerMetrics } from '../../lib/http/metrics.js'
import { registerOpenApi } from '../../lib/http/openapi.js'
import type { Logger } from '../../lib/logger.js'
import type { MigrationFile } from '../../lib/migrate.js'
import { SecretBox, sha256 } from '../../lib/crypto.js'
import { credentialOf } from '../../lib/http/auth-failures.js'
import { registerAuth } from './plugins/auth.js'
import { ApiKeyCache } from '../../domains/tenancy/key-cache.js'
import { ExperimentDefinitions } from '../../domains/experiments/definitions-cache.js'
import apiKeyRoutes from './modules/api-keys/routes.js'
import auditRoutes from './modules/audit/routes.js'
import meRoutes from './modules/me/routes.js'
import tenantRoutes from './modules/tenants/routes.js'
import formRoutes from './modules/forms/routes.js'
import leadRoutes from './modules/leads/routes.js'
import whatsappNumberRoutes from './modules/whatsapp-numbers/routes.js'
import opsWhatsappRoutes from './modules/ops-whatsapp/routes.js'
import opsAnalyticsRoutes from './modules/ops-analytics/routes.js'
import messageRoutes from './modules/messages/routes.js'
import templateRoutes from './modules/templates/routes.js'
import broadcastRoutes from './modules/broadcasts/routes.js'
import flowRoutes from './modules/flows/routes.js'
import conversationRoutes from './modules/conversations/routes.js'
import privacyExportRoutes from './modules/privacy/export-routes.js'
import privacyRetentionRoutes from './modules/privacy/retention-routes.js'
import privacyErasureRoutes from './modules/privacy/erasure-routes.js'
import siteKeyRoutes from './modules/site-keys/routes.js'
import experimentRoutes from './modules/experiments/routes.js'
import assessmentRoutes from './modules/assessments/routes.js'
import assessmentAiRoutes from './modules/assessment-ai/routes.js'
import analyticsInboxRoutes from './modules/analytics-inbox/routes.js'
import flagRoutes from './modules/flags/routes.js'
import opsOnboardingRoutes from './modules/ops-onboarding/routes.js'
import { FeatureFlags } from '../../lib/feature-flags.js'
import posthogRoutes from './modules/analytics-posthog/routes.js'
import analyticsLiveRoutes from './modules/analytics-live/routes.js'
import { LiveFeed } from '../../domains/analytics/live.js'
import analyticsRoutes from './modules/analytics/routes.js'
import assessmentPartnerRoutes from './modules/assessment-partners/routes.js'
import partnerPortalRoutes from './modules/partner-portal/routes.js'
import dashboardRoutes from './dashboard/routes.js'
import campaignRoutes from './modules/campaigns/routes.js'
import productRoutes from './modules/products/routes.js'
import creativeRoutes from './modules/creatives/routes.js'
import platformIntegrationRoutes from './modules/platform-integrations/routes.js'
import aiGenerationRoutes from './modules/ai-generations/routes.js'
import mediaPlanRoutes from './modules/media-plans/routes.js'
import campaignPerformanceRoutes from './modules/campaign-performance/routes.js'

export interface ApiDeps {
  config: Config
  sql: Sql
  log: Logger
  migrations: MigrationFile[]
  redis?: Redis | null
  isShuttingDown?: () => boolean
  /** Seals tenants' secrets (Meta tokens, app secrets); from SECRETS_KEY unless given. */
  secrets: SecretBox
  /** Feature flags (Unleash when configured, the catalog's defaults otherwise); from the config unless given. */
  flags: FeatureFlags
  /** The live feed's LISTEN and fan-out (one per process); made here unless given. Closed with the app. */
  liveFeed: LiveFeed
  /** Authenticated API keys, in process, invalidated by NOTIFY; made (and closed with the app) here unless given. */
  apiKeys: ApiKeyCache
  /** Each tenant's started experiments, in process, invalidated by NOTIFY (the assign route); made here unless given. */
  experimentDefinitions: ExperimentDefinitions
}

/** Builds the API service without listening: tests drive it with app.inject(), main.ts listens. */
export async function buildApiApp(input: Omit<ApiDeps, 'secrets' | 'flags' | 'liveFeed' | 'apiKeys' | 'experimentDefinitions'> & {
  secrets?: SecretBox; flags?: FeatureFlags; liveFeed?: LiveFeed; apiKeys?: ApiKeyCache; experimentDefinitions?: ExperimentDefinitions
}): Promise<App> {
  const ownFlags = input.flags ? null : FeatureFlags.fromConfig(input.config, input.log)
  const ownKeys = input.apiKeys ? null : new ApiKeyCache(input.sql, input.log, { ttlMs: input.config.API_KEY_CACHE_TTL_MS })
  const ownDefinitions = input.experimentDefinitions ? null : new ExperimentDefinitions(input.sql, input.log, { ttlMs: input.config.EXPERIMENT_CACHE_TTL_MS })
  const deps: ApiDeps = {
    ...input,
    secrets: input.secrets ?? SecretBox.fromConfig(input.config.SECRETS_KEY),
    flags: input.flags ?? ownFlags!,
    liveFeed: input.liveFeed ?? new LiveFeed(input.sql, input.log, { resumeMaxEvents: input.config.LIVE_RESUME_MAX_EVENTS, sweepIntervalMs: input.config.LIVE_HEARTBEAT_MS }),
    apiKeys: input.apiKeys ?? ownKeys!,
    experimentDefinitions: input.experimentDefinitions ?? ownDefinitions!,
  }
  const { config } = deps
  const app = createHttpServer({ logger: deps.log, bodyLimit: config.BODY_LIMIT_BYTES, trustProxy: config.TRUST_PROXY, timeouts: config })
  // Flags this app made are its to stop (polling, last metrics); flags handed in belong to the caller.
  if (ownFlags) app.addHook('onClose', async () => ownFlags.close())
  registerMetrics(app, { service: 'api', config })

  await app.register(rateLimit, {
    global: true,
    max: config.API_RATE_LIMIT_PER_MINUTE,
    timeWindow: 60_000,
    // Shared across instances when Redis is configured; per process otherwise.
    redis: deps.redis ?? undefined,
    nameSpace: 'wa-api-rl:',
    // A Redis outage must not take the API down with it (today it made every request a 500): the limit fails open.
    skipOnError: true,
    // Per credential when there is one (hashed: the key itself never becomes a Redis key), else per client IP.
    // The credential as auth reads it, so that respelling the header (`bearer`, extra spaces) is the same budget;
    // a header that presents no credential counts against its IP, so garbage cannot mint fresh budgets either.
    keyGenerator: (req) => {
      const token = credentialOf(req.headers.authorization)
      return token ? `k:${sha256(token).toString('base64url').slice(0, 22)}` : `ip:${req.ip}`
    },
    allowList: (req) => req.url === '/healthz' || req.url === '/readyz',
    errorResponseBuilder: (_req, context) =>
      new AppError('RATE_LIMITED', `rate limit exceeded: ${context.max} requests per minute; retry in ${Math.ceil(context.ttl / 1000)} s`, {
        headers: { 'retry-after': String(Math.ceil(context.ttl / 1000)) },
      }),
  })
  // Caches this app made listen for changes (in the background) until the app closes.
  for (const own of [ownKeys, ownDefinitions]) {
    if (!own) continue
    void own.start()
    app.addHook('onClose', async () => own.close())
  }
  registerAuth(app, {
    keys: deps.apiKeys, sql: deps.sql, operatorKey: config.OPERATOR_API_KEY, log: deps.log, redis: deps.redis, failureLimitPerMinute: config.AUTH_FAILURE_LIMIT_PER_MINUTE,
  })
  await registerOpenApi(app, {
    title: 'WhatsApp lead platform API',
    description: 'Tenant, admin and operator API. Authenticate with `Authorization: Bearer <key>`.',
    version: '1',
    bearer: true,
  })
  registerHealthRoutes(app, { sql: deps.sql, migrations: deps.migrations, isShuttingDown: deps.isShuttingDown ?? (() => false) })

  const modules = [
    ['/v1/tenants', tenantRoutes],
    ['/v1/me', meRoutes],
    ['/v1/api-keys', apiKeyRoutes],
    ['/v1/audit-log', auditRoutes],
    ['/v1/forms', formRoutes],
    ['/v1/leads', leadRoutes],
    ['/v1/whatsapp/numbers', whatsappNumberRoutes],
    ['/v1/ops/whatsapp', opsWhatsappRoutes],
    ['/v1/ops/analytics', opsAnalyticsRoutes],
    ['/v1/messages', messageRoutes],
    ['/v1/templates', templateRoutes],
    ['/v1/broadcasts', broadcastRoutes],
    ['/v1/flows', flowRoutes],
    ['/v1/conversations', conversationRoutes],
    ['/v1/privacy/export-requests', privacyExportRoutes],
    ['/v1/privacy/retention', privacyRetentionRoutes],
    ['/v1/privacy', privacyErasureRoutes],
    ['/v1/site-keys', siteKeyRoutes],
    ['/v1/assessments', assessmentRoutes],
    ['/v1/assessment-ai', assessmentAiRoutes],
    ['/v1/experiments', experimentRoutes],
    ['/v1/analytics/inbox', analyticsInboxRoutes],
    ['/v1/flags', flagRoutes],
    ['/v1/analytics/posthog', posthogRoutes],
    ['/v1/analytics/live', analyticsLiveRoutes],
    ['/v1/ops/onboarding', opsOnboardingRoutes],
    ['/v1/analytics', analyticsRoutes],
    ['/v1/assessments', assessmentPartnerRoutes],
    ['/v1/partner', partnerPortalRoutes],
    ['/v1/campaigns', campaignRoutes],
    ['/v1/products', productRoutes],
    ['/v1/creatives', creativeRoutes],
    ['/v1/platform-integrations', platformIntegrationRoutes],
    ['/v1/ai-generations', aiGenerationRoutes],
    ['/v1/media-plans', mediaPlanRoutes],
    // Beside the campaigns module under the same prefix: performance, spend and ad ids (its own plugin).
    ['/v1/campaigns', campaignPerformanceRoutes],
  ] as const
  // Live streams never end by themselves: close them first on shutdown, or app.close() would wait for them forever.
  app.addHook('preClose', async () => deps.liveFeed.close())
  for (const [prefix, plugin] of modules) {
    await app.register(async (scope) => plugin(scope as unknown as App, deps), { prefix })
  }
  // The admin dashboard (a static page over the public API): services/api/dashboard/README.md.
  await app.register(async (scope) => dashboardRoutes(scope as unknown as App))
  return app
}
