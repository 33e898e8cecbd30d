import { z } from 'zod'

// Empty strings in the environment mean "unset": `FOO=` in a .env file should not become a value.
const optionalString = z.preprocess((v) => (v === '' ? undefined : v), z.string().optional())
const optionalUrl = z.preprocess((v) => (v === '' ? undefined : v), z.url().optional())
const bool = (fallback: boolean) =>
  z
    .preprocess((v) => (v === '' || v === undefined ? undefined : v), z.enum(['true', 'false', '1', '0']).optional())
    .transform((v) => (v === undefined ? fallback : v === 'true' || v === '1'))
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
/** A duration: `90s`, `30m`, `2h`, `1d`, or plain milliseconds; parsed to milliseconds. */
const duration = (fallback: string) =>
  z.string().default(fallback).transform((v, ctx) => {
    const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v.trim())
    if (!m) {
      ctx.addIssue({ code: 'custom', message: 'a duration such as 90s, 30m, 2h or 1d' })
      return z.NEVER
    }
    return Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']!
  })
const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback)

export const ConfigSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  // Database. Unset DATABASE_URL means: run an embedded PostgreSQL in EMBEDDED_PG_DIR.
  DATABASE_URL: optionalUrl,
  DATABASE_RUNTIME_URL: optionalUrl,
  DATABASE_RUNTIME_PASSWORD: optionalString,
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
  EMBEDDED_PG_DIR: z.string().default('.data/postgres'),
  EMBEDDED_PG_PORT: port(54329),
  AUTO_MIGRATE: bool(true),
  AUTO_SEED: bool(true),

  // HTTP services.
  HOST: z.string().default('127.0.0.1'),
  API_PORT: port(3000),
  WEBHOOKS_PORT: port(3001),
  TRUST_PROXY: z
    .preprocess((v) => (v === '' ? undefined : v), z.string().optional())
    .transform((v) => {
      if (v === undefined || v === 'false') return false
      if (v === 'true') return true
      if (/^\d+$/.test(v)) return Number(v)
      return v.split(',').map((s) => s.trim())
    }),
  // Slow clients: a request's headers must arrive within HTTP_HEADERS_TIMEOUT_MS and the whole request (headers and
  // body) within HTTP_REQUEST_TIMEOUT_MS, else 408 and the connection is closed; this also bounds how long a
  // trickling client can hold up shutdown. An idle keep-alive connection is closed after HTTP_KEEP_ALIVE_TIMEOUT_MS
  // (longer than a load balancer's idle timeout, so the balancer, not we, closes first).
  HTTP_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(15_000),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(72_000),
  BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).default(1_048_576),
  API_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(1200),
  // Failed API authentications (a presented key that is wrong) per client IP per minute; beyond it every request
  // from that IP that presents a key gets 429 without the key being looked up. Shared through REDIS_URL when set.
  AUTH_FAILURE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(30),
  // An authenticated API key is trusted in process for at most this long without a lookup (domains/tenancy/key-cache.ts);
  // revokes, role changes and tenant suspension reach every process sooner, through NOTIFY. 0 looks every key up.
  API_KEY_CACHE_TTL_MS: z.coerce.number().int().min(0).max(300_000).default(10_000),
  // A tenant's started experiments are held in process for at most this long (domains/experiments/definitions-cache.ts);
  // changes reach every process sooner, through NOTIFY. 0 reads them with every assignment.
  EXPERIMENT_CACHE_TTL_MS: z.coerce.number().int().min(0).max(300_000).default(10_000),
  WEBHOOK_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).default(3_145_728),
  // Public lead forms: a person posts a few fields; anything bigger is not a form. Limits per client IP (across
  // forms) and per form (across IPs), per minute; shared through REDIS_URL when set.
  FORM_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).default(65_536),
  // POST /v1/events: 1,000 events of ~1 KB fit; a body over it is a 413.
  EVENTS_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).default(2_097_152),
  // Site-key (browser) event requests per client IP per minute; API-key senders are tenants and not limited here.
  EVENTS_RATE_LIMIT_PER_IP_PER_MINUTE: z.coerce.number().int().min(1).default(600),
  FORM_RATE_LIMIT_PER_IP_PER_MINUTE: z.coerce.number().int().min(1).default(30),
  FORM_RATE_LIMIT_PER_FORM_PER_MINUTE: z.coerce.number().int().min(1).default(600),

  // Operators authenticate with this key; it can create tenants. At least 32 characters.
  OPERATOR_API_KEY: z.preprocess((v) => (v === '' ? undefined : v), z.string().min(32).optional()),
  // 32 bytes, base64 or hex: encrypts tenants' WhatsApp access tokens and app secrets at rest.
  SECRETS_KEY: optionalString,

  // The platform's Meta app: one webhook URL shared by every tenant on it (tenants may also bring their own app).
  META_APP_ID: optionalString,
  META_APP_SECRET: optionalString,
  META_VERIFY_TOKEN: optionalString,
  // Meta's Graph API, or a local emulator (ops/emulators).
  GRAPH_API_BASE_URL: optionalUrl,
  GRAPH_API_VERSION: z.string().regex(/^v\d+\.\d+$/, 'like v21.0').default('v21.0'),
  // Sends per second per business number, shared by every worker process (Meta's default throughput is 80).
  WHATSAPP_SEND_RATE_PER_SECOND: z.coerce.number().int().min(1).max(1000).default(80),
  // `npm start` runs the local Cloud API emulator here when GRAPH_API_BASE_URL is unset (development only).
  WHATSAPP_EMULATOR_PORT: port(4010),

  // Raw webhook deliveries are deleted this long after they were processed.
  WEBHOOK_RETENTION_DAYS: z.coerce.number().int().min(1).max(365).default(14),

  // Privacy. A ready subject-access export is deleted this long after it was produced (a tenant may set its own,
  // 1-30 days, with PATCH /v1/privacy/retention). The nightly retention task deletes in statements of at most
  // PRIVACY_RETENTION_BATCH_ROWS rows and stops starting new ones after PRIVACY_RETENTION_BUDGET_SECONDS (the
  // next night goes on where it stopped).
  PRIVACY_EXPORT_TTL_DAYS: z.coerce.number().int().min(1).max(30).default(7),
  PRIVACY_RETENTION_BATCH_ROWS: z.coerce.number().int().min(1).max(100_000).default(5000),
  PRIVACY_RETENTION_BUDGET_SECONDS: z.coerce.number().int().min(1).max(86_400).default(1800),

  // The live feed (GET /v1/analytics/live, SSE). A comment every LIVE_HEARTBEAT_MS keeps proxies from closing an idle
  // stream (and is how a dead client is noticed); a client that does not read is cut off once LIVE_MAX_BUFFERED_BYTES
  // wait for it, rather than buffered without bound; a reconnect sends at most LIVE_RESUME_MAX_EVENTS missed events
  // (beyond, an `event: reset` tells it to reload); a tenant may hold LIVE_MAX_STREAMS_PER_TENANT streams per process.
  LIVE_HEARTBEAT_MS: z.coerce.number().int().min(50).max(50_000).default(15_000),
  LIVE_MAX_BUFFERED_BYTES: z.coerce.number().int().min(1024).default(1_048_576),
  LIVE_RESUME_MAX_EVENTS: z.coerce.number().int().min(1).max(100_000).default(10_000),
  LIVE_MAX_STREAMS_PER_TENANT: z.coerce.number().int().min(1).max(10_000).default(200),
  // Analytics rollups (analytics__roll_up, every minute). A run rebuilds at most ANALYTICS_ROLLUP_BATCH_BUCKETS of a
  // tenant's dirty 5-minute buckets per transaction and starts no new batch after ANALYTICS_ROLLUP_BUDGET_SECONDS (kept
  // under the cron interval; the next run carries on). The /metrics gauge analytics_rollup_difference_events compares
  // rollups with raw over the last ANALYTICS_RECONCILE_WINDOW_MINUTES, at most once a minute.
  ANALYTICS_ROLLUP_BATCH_BUCKETS: z.coerce.number().int().min(1).max(10_000).default(50),
  ANALYTICS_ROLLUP_BUDGET_SECONDS: z.coerce.number().int().min(1).max(3600).default(45),
  ANALYTICS_RECONCILE_WINDOW_MINUTES: z.coerce.number().int().min(5).max(7 * 24 * 60).default(60),

  // Worker.
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(8),
  WORKER_POLL_INTERVAL_MS: z.coerce.number().int().min(50).default(1000),
  // Each worker process beats every timeout/6; the jobs of a worker silent for longer than this are handed back to
  // the queue, and a process that could not beat for half of it stops its runner (services/workers/worker.ts).
  WORKER_HEARTBEAT_TIMEOUT_MS: z.coerce.number().int().min(600).max(600_000).default(30_000),

  // Prometheus /metrics: loopback callers only, unless they send `Authorization: Bearer <METRICS_TOKEN>`. The worker
  // serves its metrics on METRICS_PORT (bound to HOST); 0 turns that server off.
  METRICS_TOKEN: z.preprocess((v) => (v === '' ? undefined : v), z.string().min(16).optional()),
  METRICS_PORT: port(9464),

  // Onboarding. The page and resume links live on the webhooks service: ONBOARDING_PUBLIC_URL is how businesses
  // reach it (default http://HOST:WEBHOOKS_PORT). Links expire after ONBOARDING_TOKEN_TTL_HOURS. A session idle for
  // ONBOARDING_NUDGE_AFTER is nudged, for ONBOARDING_ABANDON_AFTER abandoned (durations: 90s, 30m, 2h, 1d, or ms).
  ONBOARDING_PUBLIC_URL: optionalUrl,
  ONBOARDING_TOKEN_TTL_HOURS: z.coerce.number().int().min(1).max(24 * 90).default(168),
  ONBOARDING_NUDGE_AFTER: duration('30m'),
  ONBOARDING_ABANDON_AFTER: duration('2h'),
  ONBOARDING_SIGNUP_LIMIT_PER_IP_PER_HOUR: z.coerce.number().int().min(1).default(20),
  // Views and saves of sessions, per client IP per minute (a token cannot be guessed, but each try costs a lookup).
  ONBOARDING_RATE_LIMIT_PER_IP_PER_MINUTE: z.coerce.number().int().min(1).default(600),
  // Public assessment sessions (start, answer, back, resume), per client IP per minute; starts separately, per hour.
  ASSESSMENTS_RATE_LIMIT_PER_IP_PER_MINUTE: z.coerce.number().int().min(1).default(600),
  ASSESSMENTS_STARTS_PER_IP_PER_HOUR: z.coerce.number().int().min(1).default(120),
  // Re-scoring: completed sessions per batch (one transaction each) and batches per job before it hands over.
  ASSESSMENTS_RESCORE_BATCH: z.coerce.number().int().min(10).max(20_000).default(2000),
  ASSESSMENTS_RESCORE_BATCHES_PER_JOB: z.coerce.number().int().min(1).default(50),
  // A session in progress with no answer, back, profile or completion for ASSESSMENTS_ABANDON_AFTER (90s, 30m, 2h, 1d)
  // is marked abandoned by the idle batch (every 5 minutes, ASSESSMENTS_ABANDON_BATCH per transaction); the
  // participant's next action reopens it.
  ASSESSMENTS_ABANDON_AFTER: duration('24h'),
  ASSESSMENTS_ABANDON_BATCH: z.coerce.number().int().min(10).max(20_000).default(1000),
  // Outbound onboarding events (onboarding.nudge, onboarding.abandoned, onboarding.completed), signed the Standard
  // Webhooks way with ONBOARDING_WEBHOOK_SECRET (whsec_<base64>). Unset URL: events are recorded as skipped.
  ONBOARDING_WEBHOOK_URL: optionalUrl,
  ONBOARDING_WEBHOOK_SECRET: z.preprocess((v) => (v === '' ? undefined : v), z.string().regex(/^whsec_[A-Za-z0-9+/=]{24,}$/, 'whsec_ followed by at least 24 base64 characters').optional()),
  // The platform's own WhatsApp number, from which a nudge also goes to the business's contact phone as the approved
  // template ONBOARDING_NUDGE_TEMPLATE (body parameters: business name, resume link), through that tenant's outbox.
  // PLATFORM_TENANT_ID: the tenant holding it; PLATFORM_PHONE_NUMBER_ID: Meta's id of the number. Unset: WhatsApp
  // nudges are skipped (recorded with the reason). In development they default to the seeded platform tenant.
  PLATFORM_TENANT_ID: z.preprocess((v) => (v === '' ? undefined : v), z.uuid().optional()),
  PLATFORM_PHONE_NUMBER_ID: z.preprocess((v) => (v === '' ? undefined : v), z.string().regex(/^\d{5,20}$/, "Meta's phone number id (digits)").optional()),
  ONBOARDING_NUDGE_TEMPLATE: z.string().regex(/^[a-z0-9_]{1,512}$/).default('onboarding_reminder'),
  ONBOARDING_NUDGE_TEMPLATE_LANGUAGE: z.string().regex(/^[a-z]{2,3}(_[A-Za-z]{2,4})?$/).default('en'),

  // Partner links (domains/assessments/partners). GET /l/<code> lives on the webhooks service: ASSESSMENTS_PUBLIC_URL
  // is how visitors reach it (default http://HOST:WEBHOOKS_PORT). A web visit is sent to ASSESSMENT_WEB_START_PATH
  // on that base ({publicKey} and {code} are filled in), a WhatsApp one to wa.me/<business number> with
  // LINK_WHATSAPP_TEXT as the pre-filled text ({code}: the bot reads ref:<code> back). The visitor cookie lasts
  // LINK_VISITOR_COOKIE_DAYS. Visits per IP per minute are limited to LINK_RATE_LIMIT_PER_IP_PER_MINUTE.
  ASSESSMENTS_PUBLIC_URL: optionalUrl,
  ASSESSMENT_WEB_START_PATH: z.string().startsWith('/').default('/assessments/{publicKey}/start?link={code}'),
  LINK_WHATSAPP_TEXT: z.string().min(1).max(500).includes('{code}').default('Hi! I would like to take the assessment (ref:{code})'),
  LINK_VISITOR_COOKIE_DAYS: z.coerce.number().int().min(1).max(730).default(180),
  LINK_RATE_LIMIT_PER_IP_PER_MINUTE: z.coerce.number().int().min(1).default(120),
  // The shop's purchase webhooks (Standard Webhooks signatures) older or newer than this are refused (replays).
  SHOP_WEBHOOK_TOLERANCE_SECONDS: z.coerce.number().int().min(30).max(86_400).default(300),

  // Assessments' AI analysis (domains/assessments/ai): with AI_BASE_URL (an OpenAI-compatible API, e.g.
  // https://api.openai.com/v1, or ops/emulators/ai-provider.ts) results are analysed by AI_MODEL; unset, by the
  // rule-based provider. Analyses are cached per tenant by pattern for AI_CACHE_TTL seconds; at most
  // AI_RATE_LIMIT_PER_HOUR provider calls per participant and AI_TENANT_CALLS_PER_HOUR per tenant (each tenant may
  // lower or raise its own) over a sliding hour; beyond them, or when the provider fails, the rules answer.
  AI_BASE_URL: optionalUrl,
  AI_API_KEY: optionalString,
  AI_MODEL: z.string().min(1).max(200).default('gpt-4o-mini'),
  AI_CACHE_TTL: z.coerce.number().int().min(0).max(30 * 86_400).default(3600),
  AI_RATE_LIMIT_PER_HOUR: z.coerce.number().int().min(0).max(100_000).default(50),
  AI_TENANT_CALLS_PER_HOUR: z.coerce.number().int().min(0).max(1_000_000).default(1000),
  AI_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(15_000),
  // What a pattern holds (domains/assessments/ai/pattern.ts): each scored answer's tier, or only the band and the
  // categories' levels (coarser: many more cache hits, less specific text).
  AI_PATTERN_DETAIL: z.enum(['answers', 'categories']).default('answers'),
  AI_EMULATOR_PORT: port(4030),

  // Campaigns (issue 13). The legacy browser dump (POST /v1/campaigns/import/local-storage) may be as large as the old
  // builder's localStorage (5 MB of UTF-16 text, so up to ~10 MB of JSON): its own body limit. Expired drafts are
  // deleted CAMPAIGN_DRAFT_EXPIRE_BATCH at a time, for at most CAMPAIGN_DRAFT_EXPIRE_BUDGET_SECONDS per run.
  CAMPAIGN_IMPORT_MAX_BYTES: z.coerce.number().int().min(1024).max(64 * 1_048_576).default(10 * 1_048_576),
  CAMPAIGN_DRAFT_EXPIRE_BATCH: z.coerce.number().int().min(1).max(100_000).default(1000),
  CAMPAIGN_DRAFT_EXPIRE_BUDGET_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),

  // Optional outside services.
  REDIS_URL: optionalUrl,
  // PostHog forwarding (domains/analytics/posthog): with POSTHOG_API_KEY (the operator's project API key) set, the
  // events of tenants that opted in (PUT /v1/analytics/posthog) are sent to POSTHOG_HOST (PostHog US cloud when
  // unset in production; in development `npm start` runs the local emulator on POSTHOG_EMULATOR_PORT instead).
  // Batches of POSTHOG_BATCH_SIZE; a failed batch is retried after POSTHOG_RETRY_BASE_MS doubling (at most
  // POSTHOG_RETRY_MAX_MS), and parked with its error after POSTHOG_MAX_ATTEMPTS.
  POSTHOG_API_KEY: optionalString,
  POSTHOG_HOST: optionalUrl,
  POSTHOG_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(500),
  POSTHOG_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(10),
  POSTHOG_RETRY_BASE_MS: z.coerce.number().int().min(1).max(3_600_000).default(30_000),
  POSTHOG_RETRY_MAX_MS: z.coerce.number().int().min(1).max(86_400_000).default(3_600_000),
  POSTHOG_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  // One drain run stops starting batches after this long (the cron runs every minute).
  POSTHOG_DRAIN_BUDGET_MS: z.coerce.number().int().min(100).max(600_000).default(50_000),
  // Batches in flight at once (each holds a database connection while PostHog answers).
  POSTHOG_DRAIN_CONCURRENCY: z.coerce.number().int().min(1).max(8).default(2),
  POSTHOG_EMULATOR_PORT: port(4020),
  // Deleting an erased person's PostHog persons and events (POST /api/projects/:id/persons/bulk_delete/) needs a
  // personal API key with person:write, the project id, and the app host (us.posthog.com, not the ingestion host;
  // unset: POSTHOG_HOST without its ".i"). Without them, deletions are listed as manual for an operator.
  POSTHOG_PERSONAL_API_KEY: optionalString,
  POSTHOG_PROJECT_ID: z.preprocess((v) => (v === '' ? undefined : v), z.string().regex(/^\d{1,20}$/, 'a PostHog project id (digits)').optional()),
  POSTHOG_APP_HOST: optionalUrl,
  // Origins a tenant's own PostHog project may live at (PUT /v1/analytics/posthog with a project): PostHog's US and
  // EU clouds by default, plus POSTHOG_HOST / POSTHOG_APP_HOST when set. Comma-separated; the worker posts nowhere else.
  POSTHOG_ALLOWED_HOSTS: z.preprocess((v) => (v === '' || v === undefined ? undefined : String(v).split(',').map((x) => x.trim()).filter(Boolean)),
    z.array(z.url()).default(['https://us.i.posthog.com', 'https://eu.i.posthog.com', 'https://us.posthog.com', 'https://eu.posthog.com'])),
  // Feature flags: the Unleash client API (e.g. https://unleash.example.com/api) and a client token. Unset: every flag
  // takes its default from lib/feature-flags.ts (or UNLEASH_BOOTSTRAP_FILE), and `npm start` runs the local emulator.
  UNLEASH_URL: optionalUrl,
  UNLEASH_API_TOKEN: optionalString,
  UNLEASH_APP_NAME: z.string().min(1).max(100).default('wa-leads-platform'),
  // How often the toggles are fetched again; between fetches, and while Unleash is unreachable, the last known ones
  // are used (kept on disk in UNLEASH_BACKUP_DIR, the OS temp folder by default, so a restart has them too).
  UNLEASH_REFRESH_INTERVAL_MS: z.coerce.number().int().min(1000).max(3_600_000).default(15_000),
  UNLEASH_BACKUP_DIR: optionalString,
  // A JSON file of toggles in Unleash's client format ({ "features": [...] }), used until the first fetch succeeds.
  UNLEASH_BOOTSTRAP_FILE: optionalString,
  // `npm start` runs the local Unleash emulator on this port when UNLEASH_URL is unset (development only); 0 = any
  // free port (only the API in the same process talks to it).
  UNLEASH_EMULATOR_PORT: port(0),
})

export type Config = z.infer<typeof ConfigSchema>

/** Parses the environment; throws ConfigError naming the first bad variable. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const result = ConfigSchema.safeParse(env)
  if (!result.success) {
    const issue = result.error.issues[0]!
    const name = String(issue.path[0] ?? 'environment')
    throw new ConfigError(`invalid configuration: ${name}: ${issue.message}`)
  }
  const config = result.data
  if (config.NODE_ENV === 'production' && config.DATABASE_URL && !config.DATABASE_RUNTIME_URL) {
    throw new ConfigError('invalid configuration: DATABASE_RUNTIME_URL: required in production (the non-owner role the services run as)')
  }
  if (config.NODE_ENV === 'production' && !config.SECRETS_KEY) {
    throw new ConfigError('invalid configuration: SECRETS_KEY: required in production (32 bytes, hex or base64)')
  }
  if (config.HTTP_HEADERS_TIMEOUT_MS > config.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError('invalid configuration: HTTP_HEADERS_TIMEOUT_MS: must not exceed HTTP_REQUEST_TIMEOUT_MS (the headers are part of the request)')
  }
  // Development gets a known platform app so `npm start` and the lead emulator work out of the box.
  if (config.NODE_ENV !== 'production') {
    config.META_APP_SECRET ??= 'dev-meta-app-secret'
    config.META_VERIFY_TOKEN ??= 'dev-meta-verify-token'
  }
  // Development: the platform number of db/seeds/0005_platform_number.sql, on the local emulator.
  if (config.NODE_ENV === 'development' && !config.PLATFORM_TENANT_ID && !config.PLATFORM_PHONE_NUMBER_ID) {
    config.PLATFORM_TENANT_ID = '00000000-0000-4000-8000-0000000000f0'
    config.PLATFORM_PHONE_NUMBER_ID = '100000000000102'
  }
  if (Boolean(config.PLATFORM_TENANT_ID) !== Boolean(config.PLATFORM_PHONE_NUMBER_ID)) {
    throw new ConfigError(`invalid configuration: ${config.PLATFORM_TENANT_ID ? 'PLATFORM_PHONE_NUMBER_ID' : 'PLATFORM_TENANT_ID'}: required with ${config.PLATFORM_TENANT_ID ? 'PLATFORM_TENANT_ID' : 'PLATFORM_PHONE_NUMBER_ID'} (the platform number and the tenant that holds it)`)
  }
  if (config.SECRETS_KEY) {
    const raw = config.SECRETS_KEY
    const bytes = /^[0-9a-f]{64}$/i.test(raw) ? 32 : Buffer.from(raw, 'base64').length
    if (bytes !== 32) throw new ConfigError('invalid configuration: SECRETS_KEY: expected 32 bytes as 64 hex characters or base64')
  }
  return config
}

export class ConfigError extends Error {}

/** For entry points: a bad value stops the process with one line naming it. */
export function loadConfigOrExit(env: Record<string, string | undefined> = process.env): Config {
  try {
    return parseConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`)
      process.exit(78) // EX_CONFIG
    }
    throw err
  }
}
