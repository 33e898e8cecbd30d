import type { Config } from '../../../lib/config.js'
import { createGraphClient, type GraphClient } from '../graph/client.js'

export const META_GRAPH_URL = 'https://graph.facebook.com'
/** Whole-call budget for one send; the in-flight lease of the outbox must be longer (see sender.ts). */
export const GRAPH_TIMEOUT_MS = 15_000

/**
 * Where the Graph API is: GRAPH_API_BASE_URL when set; otherwise Meta in production and the local emulator that
 * `npm start` runs (ops/emulators) everywhere else.
 */
export function graphBaseUrl(config: Pick<Config, 'GRAPH_API_BASE_URL' | 'NODE_ENV' | 'WHATSAPP_EMULATOR_PORT'>): string {
  if (config.GRAPH_API_BASE_URL) return config.GRAPH_API_BASE_URL
  return config.NODE_ENV === 'production' ? META_GRAPH_URL : `http://127.0.0.1:${config.WHATSAPP_EMULATOR_PORT}`
}

export function graphClientFor(config: Pick<Config, 'GRAPH_API_BASE_URL' | 'GRAPH_API_VERSION' | 'NODE_ENV' | 'WHATSAPP_EMULATOR_PORT'>, timeoutMs = GRAPH_TIMEOUT_MS): GraphClient {
  return createGraphClient({ baseUrl: graphBaseUrl(config), apiVersion: config.GRAPH_API_VERSION, timeoutMs })
}

/** A lookup a person waits for (the messaging limit asked at registration): best effort, so it gives up sooner. */
export const GRAPH_LOOKUP_TIMEOUT_MS = 5_000
