import type { Redis } from 'ioredis'
import type { Config } from '../../lib/config.js'
import { SecretBox } from '../../lib/crypto.js'
import { DeliveryInbox } from '../../domains/whatsapp/inbox.js'
import { AnswerInbox } from '../../domains/assessments/answer-inbox.js'
import type { Sql } from '../../lib/db.js'
import { createHttpServer, type App } from '../../lib/http/create-server.js'
import { registerHealthRoutes } from '../../lib/http/health.js'
import { registerMetrics } from '../../lib/http/metrics.js'
import { registerOpenApi } from '../../lib/http/openapi.js'
import type { Logger } from '../../lib/logger.js'
import type { MigrationFile } from '../../lib/migrate.js'
import whatsappWebhookRoutes from './modules/whatsapp/routes.js'
import formSubmissionRoutes from './modules/forms/routes.js'
import eventIntakeRoutes from './modules/events/routes.js'
import onboardingRoutes from './modules/onboarding/routes.js'
import onboardingPageRoutes from './onboarding-page/routes.js'
import assessmentPageRoutes from './assessment-page/routes.js'
import variantRoutes from './modules/variants/routes.js'
import assessmentSessionRoutes from './modules/assessments/routes.js'
import partnerLinkRoutes from './modules/partner-links/routes.js'
import shopWebhookRoutes from './modules/partner-links/shop-routes.js'
import linkSessionRoutes from './modules/partner-links/session-routes.js'
import { ApiKeyCache } from '../../domains/tenancy/key-cache.js'
import { ExperimentDefinitions } from '../../domains/experiments/definitions-cache.js'

export interface WebhooksDeps {
  config: Config
  sql: Sql
  log: Logger
  migrations: MigrationFile[]
  redis?: Redis | null
  isShuttingDown?: () => boolean
  /** Seals and opens tenants' secrets; from SECRETS_KEY unless given. */
  secrets?: SecretBox
  /** Group-committing store for WhatsApp deliveries; one per process unless given. */
  inbox?: DeliveryInbox
  /** Group-committing store for web assessment answers; one per process unless given. */
  answers?: AnswerInbox
  /** API keys resolved in process (the event intake's keys); one per app unless given. */
  apiKeys?: ApiKeyCache
  /** Running experiments' definitions in process (the public variant endpoint's); one per app unless given. */
  experimentDefinitions?: ExperimentDefinitions
}

/**
 * The ingestion service: thin by design. Each route verifies, validates, commits what it received and enqueues the
 * work, then answers; everything slow happens in the workers.
 */
export async function buildWebhooksApp(input: WebhooksDeps): Promise<App> {
  const ownKeys = input.apiKeys ? null : new ApiKeyCache(input.sql, input.log, { ttlMs: input.config.API_KEY_CACHE_TTL_MS })
  const ownDefinitions = input.experimentDefinitions ? null
    : new ExperimentDefinitions(input.sql, input.log, { ttlMs: input.config.EXPERIMENT_CACHE_TTL_MS })
  const deps = {
    ...input,
    secrets: input.secrets ?? SecretBox.fromConfig(input.config.SECRETS_KEY),
    inbox: input.inbox ?? new DeliveryInbox(input.sql),
    apiKeys: input.apiKeys ?? ownKeys!,
    experimentDefinitions: input.experimentDefinitions ?? ownDefinitions!,
    answers: input.answers ?? new AnswerInbox(input.sql, { onError: (err) => input.log.error({ err }, 'assessment answers could not be stored') }),
  }
  const app = createHttpServer({ logger: deps.log, bodyLimit: deps.config.WEBHOOK_BODY_LIMIT_BYTES, trustProxy: deps.config.TRUST_PROXY, timeouts: deps.config })
  registerMetrics(app, { service: 'webhooks', config: deps.config })
  // Caches this app made listen for changes (in the background) until the app closes.
  for (const own of [ownKeys, ownDefinitions]) {
    if (!own) continue
    void own.start()
    app.addHook('onClose', async () => own.close())
  }
  await registerOpenApi(app, {
    title: 'WhatsApp lead platform ingestion',
    description: 'WhatsApp Cloud API webhooks, public lead forms and event intake.',
    version: '1',
    bearer: false,
  })
  registerHealthRoutes(app, { sql: deps.sql, migrations: deps.migrations, isShuttingDown: deps.isShuttingDown ?? (() => false) })

  // One line per ingestion module; each is an encapsulated plugin with its own parsers and limits.
  const modules = [
    ['/webhooks/whatsapp', whatsappWebhookRoutes],
    ['/forms', formSubmissionRoutes],
    ['/v1/events', eventIntakeRoutes],
    ['/onboarding', onboardingRoutes],
    ['/v1/variants', variantRoutes],
    ['/assessments', assessmentSessionRoutes],
    ['/l', partnerLinkRoutes],
    ['/assessments/shop', shopWebhookRoutes],
    ['/assessments/links', linkSessionRoutes],
  ] as const
  for (const [prefix, plugin] of modules) {
    await app.register(async (scope) => plugin(scope as unknown as App, deps), { prefix })
  }
  // The onboarding page (plain HTML and ES modules), calling the public onboarding routes above.
  await app.register(async (scope) => onboardingPageRoutes(scope as unknown as App))
  // The web questionnaire (plain HTML and ES modules) at the partner links' web start, calling the assessment routes.
  await app.register(async (scope) => assessmentPageRoutes(scope as unknown as App))
  return app
}
