import { tmpdir } from 'node:os'
import { Unleash, UnleashEvents } from 'unleash-client'
import type { Logger } from './logger.js'

/**
 * The product's feature flags, in one place: each gate the code asks about, with the value it takes when no
 * Unleash is configured or Unleash does not define it. Unleash decides per tenant (context property `tenantId`) or
 * per lead (`userId` = the lead id), with its strategies, constraints and variants.
 */
export const FEATURE_FLAGS = {
  'analytics.live-feed': { description: 'The live event feed (GET /v1/analytics/live) and its panel on the dashboard.', default: true },
  'analytics.posthog-forwarding': { description: 'Whether a tenant may opt in to PostHog forwarding (PUT /v1/analytics/posthog; opting out is always allowed).', default: true },
} as const satisfies Record<string, { description: string; default: boolean }>

export type FeatureFlagName = keyof typeof FEATURE_FLAGS

export interface FlagContext {
  tenantId: string
  /** A lead id: Unleash's userId, for per-lead rollouts and variant stickiness. */
  leadId?: string
  sessionId?: string
  remoteAddress?: string
  properties?: Record<string, string>
}

export interface FlagVariant { name: string; enabled: boolean; payload?: { type: string; value: string } }

export interface FlagEvaluation {
  name: string
  enabled: boolean
  variant: FlagVariant
  /** 'unleash': from toggles fetched from Unleash (now, or earlier: the last known, from its on-disk backup);
   * 'bootstrap': a bootstrap file is configured and no fetch has succeeded yet; 'default': Unleash does not define it
   * (or is not configured). */
  source: 'unleash' | 'bootstrap' | 'default'
}

export interface FlagsStatus {
  configured: boolean
  /** At least one fetch from Unleash succeeded since start. */
  synchronized: boolean
  /** Toggles known, from a fetch, the on-disk backup of an earlier fetch, or the bootstrap file. */
  toggles: number
  lastError: string | null
}

export interface FeatureFlagsOptions {
  url?: string
  token?: string
  appName: string
  refreshIntervalMs: number
  backupDir?: string
  bootstrapFile?: string
  log: Logger
}

const DISABLED: FlagVariant = { name: 'disabled', enabled: false }

/**
 * Feature flags through `unleash-client` when UNLEASH_URL and UNLEASH_API_TOKEN are set; the catalog's defaults
 * otherwise. Never throws and never waits on Unleash: evaluation is local (the client keeps the toggles in memory
 * and polls in the background), an unreachable Unleash leaves the last known toggles in place (the client's file
 * backup keeps them across restarts), and before any fetch the bootstrap file answers.
 */
export class FeatureFlags {
  private readonly client: Unleash | null
  private synchronized = false
  private lastError: string | null = null
  private readonly fromBootstrap: boolean

  constructor(private readonly options: FeatureFlagsOptions) {
    this.fromBootstrap = options.bootstrapFile !== undefined
    if (!options.url || !options.token) {
      this.client = null
      return
    }
    this.client = new Unleash({
      appName: options.appName,
      url: options.url,
      customHeaders: { Authorization: options.token },
      refreshInterval: options.refreshIntervalMs,
      metricsInterval: 60_000,
      backupPath: options.backupDir ?? tmpdir(),
      // The on-disk backup of the last fetch is newer than a bootstrap file shipped with the release: it wins.
      bootstrap: options.bootstrapFile ? { filePath: options.bootstrapFile } : {},
      bootstrapOverride: false,
      timeout: 5_000,
      skipInstanceCountWarning: true,
    })
    // Without a listener an 'error' event would throw: Unleash being down is logged, never fatal.
    this.client.on(UnleashEvents.Error, (err: unknown) => this.noteError(err))
    this.client.on(UnleashEvents.Warn, (msg: unknown) => this.noteError(msg))
    // A 304 or a new set from a fetch means Unleash answers again. The client also says 'changed' (and its own
    // 'synchronized') for the bootstrap file before any fetch, so whether a fetch succeeded is its repository's
    // `connected` (unleash-client 6; the tests fail if an upgrade moves it).
    const answered = () => {
      if (!this.connected()) return
      if (!this.synchronized) options.log.info({ toggles: this.client?.getFeatureToggleDefinitions().length ?? 0 }, 'feature flags synchronized with Unleash')
      this.synchronized = true
      this.lastError = null
    }
    this.client.on(UnleashEvents.Unchanged, answered)
    this.client.on(UnleashEvents.Changed, answered)
  }

  static fromConfig(config: { UNLEASH_URL?: string; UNLEASH_API_TOKEN?: string; UNLEASH_APP_NAME: string; UNLEASH_REFRESH_INTERVAL_MS: number; UNLEASH_BACKUP_DIR?: string; UNLEASH_BOOTSTRAP_FILE?: string }, log: Logger): FeatureFlags {
    return new FeatureFlags({
      url: config.UNLEASH_URL, token: config.UNLEASH_API_TOKEN, appName: config.UNLEASH_APP_NAME,
      refreshIntervalMs: config.UNLEASH_REFRESH_INTERVAL_MS, backupDir: config.UNLEASH_BACKUP_DIR, bootstrapFile: config.UNLEASH_BOOTSTRAP_FILE, log,
    })
  }

  /** Resolves once the toggles are known (fetched, from the backup or the bootstrap), or after timeoutMs regardless. */
  async ready(timeoutMs = 2_000): Promise<void> {
    const client = this.client
    if (!client || client.isSynchronized() || client.getFeatureToggleDefinitions().length > 0) return
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        client.off(UnleashEvents.Ready, done)
        client.off(UnleashEvents.Synchronized, done)
        resolve()
      }
      const timer = setTimeout(done, timeoutMs)
      timer.unref()
      client.once(UnleashEvents.Ready, done)
      client.once(UnleashEvents.Synchronized, done)
    })
  }

  isEnabled(name: FeatureFlagName, context: FlagContext): boolean {
    return this.evaluate(name, context).enabled
  }

  evaluate(name: string, context: FlagContext): FlagEvaluation {
    const fallback = name in FEATURE_FLAGS ? FEATURE_FLAGS[name as FeatureFlagName].default : false
    const client = this.client
    const known = client?.getFeatureToggleDefinition(name)
    if (!client || !known) return { name, enabled: fallback, variant: DISABLED, source: 'default' }
    const unleashContext = toUnleashContext(context)
    const enabled = client.isEnabled(name, unleashContext, fallback)
    const variant = client.getVariant(name, unleashContext)
    return {
      name,
      enabled,
      variant: { name: variant.name, enabled: variant.enabled, ...(variant.payload ? { payload: { type: variant.payload.type, value: String(variant.payload.value) } } : {}) },
      source: this.synchronized || !this.fromBootstrap ? 'unleash' : 'bootstrap',
    }
  }

  /** Every flag of the catalog, plus any other names asked for. */
  evaluateAll(context: FlagContext, extra: readonly string[] = []): FlagEvaluation[] {
    const names = [...new Set([...Object.keys(FEATURE_FLAGS), ...extra])]
    return names.map((name) => this.evaluate(name, context))
  }

  status(): FlagsStatus {
    return {
      configured: this.client !== null,
      synchronized: this.synchronized,
      toggles: this.client?.getFeatureToggleDefinitions().length ?? 0,
      lastError: this.lastError,
    }
  }

  /** Stops polling and sends the last metrics (best effort, bounded). */
  async close(): Promise<void> {
    const client = this.client
    if (!client) return
    await Promise.race([client.destroyWithFlush().catch(() => undefined), new Promise((r) => setTimeout(r, 1_000).unref())])
  }

  private connected(): boolean {
    return (this.client as unknown as { repository?: { connected?: boolean } } | null)?.repository?.connected === true
  }

  private noteError(err: unknown): void {
    // Messages from the client name URLs and statuses, never flag contexts (which carry only ids).
    const message = err instanceof Error ? err.message : String(err)
    if (message === this.lastError) return
    this.lastError = message
    this.options.log.warn({ reason: message.slice(0, 300) }, 'feature flags: Unleash not reachable; using the last known toggles')
  }
}

function toUnleashContext(context: FlagContext) {
  return {
    userId: context.leadId,
    sessionId: context.sessionId,
    remoteAddress: context.remoteAddress,
    properties: { ...context.properties, tenantId: context.tenantId },
  }
}
