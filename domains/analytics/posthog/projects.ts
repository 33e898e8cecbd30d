/**
 * Where a tenant's events go: its own PostHog project (keys sealed in analytics.posthog_settings, migration 0040) or
 * the operator's (POSTHOG_API_KEY), and which hosts either may be at. A tenant types a host; the worker posts to it;
 * so a host is accepted only from POSTHOG_ALLOWED_HOSTS (PostHog's clouds by default, plus the operator's own hosts).
 */
import type { Config } from '../../../lib/config.js'
import type { SecretBox } from '../../../lib/crypto.js'
import { AppError } from '../../../lib/errors.js'
import type { StoredPosthogProject, StoredPosthogSettings } from './queries.js'
import type { PosthogProjectBody, PosthogSettingsView } from './schemas.js'

/** PostHog Cloud (US) ingestion, posthog-node's own default. */
export const DEFAULT_POSTHOG_HOST = 'https://us.i.posthog.com'

const origin = (u: string) => new URL(u).origin

/** The private API lives beside ingestion: us.i.posthog.com → us.posthog.com; any other host serves both. */
export const appHostFor = (ingestionHost: string): string => origin(ingestionHost).replace(/^(https?:\/\/)(us|eu)\.i\.posthog\.com$/, '$1$2.posthog.com')

export function allowedPosthogOrigins(config: Pick<Config, 'POSTHOG_ALLOWED_HOSTS' | 'POSTHOG_HOST' | 'POSTHOG_APP_HOST'>): Set<string> {
  const all = [...config.POSTHOG_ALLOWED_HOSTS, config.POSTHOG_HOST, config.POSTHOG_APP_HOST].filter((h): h is string => !!h)
  return new Set(all.map(origin))
}

export const NO_PROJECT: StoredPosthogProject = { projectApiKeySealed: null, projectHost: null, personalApiKeySealed: null, projectId: null, appHost: null }

export const storedProjectOf = (s: StoredPosthogSettings | null): StoredPosthogProject =>
  s ? { projectApiKeySealed: s.projectApiKeySealed, projectHost: s.projectHost, personalApiKeySealed: s.personalApiKeySealed, projectId: s.projectId, appHost: s.appHost } : NO_PROJECT

/** The project to store for a PUT: absent keeps what is stored, null clears it, a body replaces it (sealed). */
export function projectToStore(config: Config, secrets: SecretBox, before: StoredPosthogSettings | null, body: PosthogProjectBody | null | undefined): StoredPosthogProject {
  if (body === undefined) return storedProjectOf(before)
  if (body === null) return NO_PROJECT
  const allowed = allowedPosthogOrigins(config)
  for (const field of ['host', 'appHost'] as const) {
    const value = body[field]
    if (value !== undefined && !allowed.has(origin(value))) {
      const message = `${origin(value)} is not an allowed PostHog host (POSTHOG_ALLOWED_HOSTS: ${[...allowed].join(', ')})`
      throw new AppError('BAD_REQUEST', `invalid body.project.${field}: ${message}`, { details: [{ in: 'body', path: `project.${field}`, message }] })
    }
  }
  return {
    projectApiKeySealed: secrets.seal(body.apiKey),
    projectHost: body.host ? origin(body.host) : null,
    personalApiKeySealed: body.personalApiKey ? secrets.seal(body.personalApiKey) : null,
    projectId: body.projectId ?? null,
    appHost: body.appHost ? origin(body.appHost) : null,
  }
}

/** The first characters of a key and its last four: enough to recognise it, not to use it. */
const hintOf = (key: string) => `${key.slice(0, 4)}…${key.slice(-4)}`

export function projectView(config: Config, secrets: SecretBox, s: StoredPosthogSettings | null): PosthogSettingsView['project'] {
  if (!s?.projectApiKeySealed) return null
  const host = s.projectHost ?? config.POSTHOG_HOST ?? DEFAULT_POSTHOG_HOST
  return {
    host,
    apiKeyHint: hintOf(secrets.open(s.projectApiKeySealed)),
    projectId: s.projectId,
    appHost: s.projectId ? (s.appHost ?? appHostFor(host)) : null,
    canDeletePersons: !!s.personalApiKeySealed && !!s.projectId,
  }
}

/** A project to send events to. `operator`: the operator's shared project (every tenant's events, grouped by tenant). */
export interface CaptureTarget { apiKey: string; host: string; operator: boolean }

export function captureTargetOf(s: StoredPosthogSettings | null, secrets: SecretBox, operator: { apiKey: string | null; host: string }): CaptureTarget | null {
  if (s?.projectApiKeySealed) return { apiKey: secrets.open(s.projectApiKeySealed), host: s.projectHost ?? operator.host, operator: false }
  return operator.apiKey ? { apiKey: operator.apiKey, host: operator.host, operator: true } : null
}

/** A project persons can be deleted in: its private API host, a personal API key and the project id. */
export interface DeletionTarget { appHost: string; personalApiKey: string; projectId: string }

export function tenantDeletionTargetOf(s: StoredPosthogSettings | null, secrets: SecretBox, operatorHost: string): DeletionTarget | null {
  if (!s?.projectApiKeySealed || !s.personalApiKeySealed || !s.projectId) return null
  return { appHost: s.appHost ?? appHostFor(s.projectHost ?? operatorHost), personalApiKey: secrets.open(s.personalApiKeySealed), projectId: s.projectId }
}

export function operatorDeletionTargetOf(config: Pick<Config, 'POSTHOG_PERSONAL_API_KEY' | 'POSTHOG_PROJECT_ID' | 'POSTHOG_APP_HOST' | 'POSTHOG_HOST'>): DeletionTarget | null {
  if (!config.POSTHOG_PERSONAL_API_KEY || !config.POSTHOG_PROJECT_ID) return null
  return {
    appHost: config.POSTHOG_APP_HOST ? origin(config.POSTHOG_APP_HOST) : appHostFor(config.POSTHOG_HOST ?? DEFAULT_POSTHOG_HOST),
    personalApiKey: config.POSTHOG_PERSONAL_API_KEY,
    projectId: config.POSTHOG_PROJECT_ID,
  }
}
