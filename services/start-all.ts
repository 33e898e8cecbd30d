/**
 * `npm start`: the whole product in one process, for development and small installs: the database (embedded unless
 * DATABASE_URL is set), migrations and first-boot seeds, then webhooks, API and worker. In production run each
 * service on its own (`npm run start:webhooks`, `start:api`, `start:worker`) so they scale separately.
 */
import { bootPlatform } from '../lib/boot.js'
import { loadConfigOrExit } from '../lib/config.js'
import { createLogger } from '../lib/logger.js'
import { connectRedis } from '../lib/redis.js'
import { closeHttpApp, onShutdown } from '../lib/shutdown.js'
import { buildApiApp } from './api/app.js'
import { buildWebhooksApp } from './webhooks/app.js'
import { startWorker } from './workers/worker.js'
import { DEMO_TEMPLATES, startWhatsAppEmulator } from '../ops/emulators/whatsapp-cloud-api.js'
import { DEMO_TOGGLES, DEMO_UNLEASH_TOKEN, startUnleashEmulator } from '../ops/emulators/unleash.js'
import { FeatureFlags } from '../lib/feature-flags.js'
import { startPosthogEmulator } from '../ops/emulators/posthog.js'

const config = loadConfigOrExit()
const log = createLogger({ level: config.LOG_LEVEL, service: 'platform' })
// Before anything starts: a Ctrl-C while starting stops, in order, what has started.
const shutdown = onShutdown(log)
const platform = await bootPlatform(config, log, { applicationName: 'platform' })
const redis = connectRedis(config.REDIS_URL, log)
let shuttingDown = false
const isShuttingDown = () => shuttingDown
const common = { config, sql: platform.sql, migrations: platform.migrations, redis, isShuttingDown }

// No Unleash configured (development): a local Unleash emulator serves the demo toggles, so flags go through the
// real client over HTTP (GET /v1/flags shows them).
const unleash = !config.UNLEASH_URL && config.NODE_ENV !== 'production'
  ? await startUnleashEmulator({ port: config.UNLEASH_EMULATOR_PORT, tokens: [DEMO_UNLEASH_TOKEN], features: DEMO_TOGGLES })
  : null
const flags = FeatureFlags.fromConfig(unleash ? { ...config, UNLEASH_URL: unleash.apiUrl, UNLEASH_API_TOKEN: DEMO_UNLEASH_TOKEN } : config, log.child({ service: 'flags' }))

const webhooks = await buildWebhooksApp({ ...common, log: log.child({ service: 'webhooks' }) })
const api = await buildApiApp({ ...common, flags, log: log.child({ service: 'api' }) })
const webhooksUrl = await webhooks.listen({ host: config.HOST, port: config.WEBHOOKS_PORT })
const apiUrl = await api.listen({ host: config.HOST, port: config.API_PORT })
// No Graph API configured (development): a local WhatsApp Cloud API emulator answers the sends and posts signed
// status webhooks back to the webhooks service, so the bot can be played from a terminal (ops/emulators/play-lead.ts).
const emulator = !config.GRAPH_API_BASE_URL && config.NODE_ENV !== 'production'
  ? await startWhatsAppEmulator({ port: config.WHATSAPP_EMULATOR_PORT, webhookUrl: `${webhooksUrl}/webhooks/whatsapp`, appSecret: config.META_APP_SECRET, statusDelayMs: 300, templates: DEMO_TEMPLATES })
  : null
// PostHog forwarding turned on (POSTHOG_API_KEY) without a host, in development: a local PostHog emulator receives
// the forwarded events (GET <url>/_emulator/received shows them), so nothing leaves the machine by accident.
const posthog = config.POSTHOG_API_KEY && !config.POSTHOG_HOST && config.NODE_ENV !== 'production'
  ? await startPosthogEmulator({ port: config.POSTHOG_EMULATOR_PORT, apiKeys: [config.POSTHOG_API_KEY] })
  : null
const workerConfig = { ...config, ...(emulator ? { GRAPH_API_BASE_URL: emulator.url } : {}), ...(posthog ? { POSTHOG_HOST: posthog.url } : {}) }
const workerStarting = startWorker({ config: workerConfig, log: log.child({ service: 'worker' }), connectionString: platform.target.runtimeUrl, metricsSql: platform.sql })

// The steps are in place before the worker has started: its start waits for the database, and a database that went
// away meanwhile would hold a Ctrl-C until the shutdown deadline. A worker still starting gets a few seconds to
// finish; one that cannot has taken no job yet, or its jobs come back when its heartbeat goes silent.
const WORKER_START_GRACE_MS = 5_000
shutdown.run([
  // Stop taking requests and finish the ones in flight, then let running jobs finish, then close the database.
  ['http', async () => { shuttingDown = true; await Promise.all([closeHttpApp(webhooks), closeHttpApp(api)]) }],
  ['worker', async () => {
    const started = await Promise.race([workerStarting.catch(() => null), new Promise<null>((r) => setTimeout(r, WORKER_START_GRACE_MS, null).unref())])
    await started?.stop()
  }],
  ['emulator', async () => { await Promise.all([emulator?.stop(), posthog?.stop()]) }],
  ['flags', async () => { await flags.close(); await unleash?.stop() }],
  ['redis', async () => redis?.quit()],
  ['database', () => platform.close()],
])
await workerStarting

const db = platform.target.embedded ? `embedded PostgreSQL on 127.0.0.1:${config.EMBEDDED_PG_PORT} (data in ${platform.target.embeddedDataDir ?? config.EMBEDDED_PG_DIR})` : 'PostgreSQL at DATABASE_URL'
process.stdout.write(
  [
    '',
    'WhatsApp lead platform is running',
    `  api        ${apiUrl}   (docs ${apiUrl}/docs, OpenAPI ${apiUrl}/openapi.json)`,
    `  dashboard  ${apiUrl}/dashboard   (sign in with the demo admin key, see README "Demo tenant")`,
    `  webhooks   ${webhooksUrl}   (WhatsApp: ${webhooksUrl}/webhooks/whatsapp)`,
    `  worker     graphile-worker, concurrency ${config.WORKER_CONCURRENCY}`,
    emulator
      ? `  whatsapp   Cloud API emulator ${emulator.url} (sends land here; statuses go to the webhooks). Play a lead:\n             npm run play-lead   (reads the same HOST, ports and META_APP_SECRET as this process)`
      : `  whatsapp   Graph API at ${config.GRAPH_API_BASE_URL ?? 'https://graph.facebook.com'}`,
    `  flags      ${unleash ? `Unleash emulator ${unleash.url} (demo toggles; GET /v1/flags)` : `Unleash at ${config.UNLEASH_URL ?? '(not configured: catalog defaults)'}`}`,
    posthog
      ? `  posthog    emulator ${posthog.url} receives forwarded events (${posthog.url}/_emulator/received); tenants opt in with PUT /v1/analytics/posthog`
      : config.POSTHOG_API_KEY
        ? `  posthog    forwarding to ${config.POSTHOG_HOST ?? 'https://us.i.posthog.com'} for tenants that opt in (PUT /v1/analytics/posthog)`
        : '  posthog    forwarding off (set POSTHOG_API_KEY to turn it on)',
    `  database   ${db}`,
    `  readiness  ${apiUrl}/readyz  ${webhooksUrl}/readyz`,
    '  demo key   see README ("Demo tenant"); Ctrl-C stops everything',
    '',
  ].join('\n') + '\n',
)

