import { parseConfig } from '../../lib/config.js'

/** The demo seed's read-only key (README, "Demo tenant"): development only, used to see when the bot's flow ended. */
export const DEMO_READER_KEY = 'wak_demo0001_local-development-only-demo-reader-key-0001'

export interface PlayArgs {
  webhooks?: string
  'app-secret'?: string
  'phone-number-id'?: string
  'display-number'?: string
  'waba-id'?: string
  'wa-id'?: string
  name?: string
  emulator?: string
  api?: string
  'api-key'?: string
  'poll-ms'?: string
  'linger-ms'?: string
  'quiet-ms'?: string
}

export interface PlaySettings {
  webhooksUrl: string
  appSecret: string
  phoneNumberId: string
  displayNumber: string
  wabaId: string
  waId: string
  name: string
  emulatorUrl: string
  /** The product's API, asked (read-only) whether the lead's conversation has ended; null when no key is known. */
  api: { url: string; key: string } | null
  pollMs: number
  lingerMs: number
  /** After this long without a business message, the conversation's state is checked (and reported). */
  quietMs: number
}

/**
 * Where play-lead finds the product: a flag wins, then its PLAY_* variable, then the variables `npm start` itself
 * reads (HOST, WEBHOOKS_PORT, API_PORT, WHATSAPP_EMULATOR_PORT, META_APP_SECRET, through lib/config.ts, so the
 * development app secret is the same default). Throws a one-line error naming a bad variable or flag.
 */
export function resolvePlaySettings(args: PlayArgs, env: Record<string, string | undefined>): PlaySettings {
  const config = parseConfig(env)
  const host = connectableHost(config.HOST)
  const local = (port: number) => `http://${host}:${port}`
  const apiKey = args['api-key'] ?? env.PLAY_API_KEY ?? (config.NODE_ENV === 'production' ? undefined : DEMO_READER_KEY)
  return {
    webhooksUrl: webhookEndpoint(args.webhooks ?? env.PLAY_WEBHOOKS_URL ?? local(config.WEBHOOKS_PORT)),
    appSecret: args['app-secret'] ?? env.PLAY_APP_SECRET ?? env.EMULATOR_APP_SECRET ?? config.META_APP_SECRET ?? '',
    phoneNumberId: args['phone-number-id'] ?? env.PLAY_PHONE_NUMBER_ID ?? '100000000000002',
    displayNumber: args['display-number'] ?? env.PLAY_DISPLAY_NUMBER ?? '15550001234',
    wabaId: args['waba-id'] ?? env.PLAY_WABA_ID ?? '100000000000001',
    waId: (args['wa-id'] ?? env.PLAY_WA_ID ?? '5511988887777').replace(/\D/g, ''),
    name: args.name ?? env.PLAY_NAME ?? 'Test Lead',
    emulatorUrl: trimSlashes(args.emulator ?? env.PLAY_EMULATOR_URL ?? local(config.WHATSAPP_EMULATOR_PORT)),
    api: apiKey ? { url: trimSlashes(args.api ?? env.PLAY_API_URL ?? local(config.API_PORT)), key: apiKey } : null,
    pollMs: positive('--poll-ms', args['poll-ms'] ?? '500'),
    lingerMs: positive('--linger-ms', args['linger-ms'] ?? '3000'),
    quietMs: positive('--quiet-ms', args['quiet-ms'] ?? env.PLAY_QUIET_MS ?? '2500'),
  }
}

/** A server listening on every interface is reached on loopback. */
export function connectableHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
}

/** Accepts a base URL (`http://127.0.0.1:3001`) or the full webhook URL. */
export function webhookEndpoint(url: string): string {
  const trimmed = trimSlashes(url)
  return trimmed.endsWith('/webhooks/whatsapp') ? trimmed : `${trimmed}/webhooks/whatsapp`
}

const trimSlashes = (url: string) => url.replace(/\/+$/, '')

function positive(name: string, value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new Error(`play-lead: ${name} must be a whole number of milliseconds, not ${JSON.stringify(value)}`)
  return n
}

/** What the conversation's bot state means for the person playing the lead; null while the bot may still answer. */
export function conversationEnd(conversation: { mode: string; state: { status: string } | null } | undefined): string | null {
  if (!conversation) return null
  if (conversation.mode === 'handed_over' || conversation.state?.status === 'handed_over') {
    return 'the bot handed this conversation to a person: no more bot replies until an operator releases it'
  }
  if (conversation.state?.status === 'ended') return "the bot's flow has ended: no more replies are expected (a new message may start a flow again)"
  if (conversation.state === null) return 'no bot flow runs in this conversation (none is published, or none matched): no replies are expected'
  return null
}
