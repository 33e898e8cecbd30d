import { z } from 'zod'
import { parseEnvOrExit, stopOnSignals } from './process.js'
import { startWhatsAppEmulator } from './whatsapp-cloud-api.js'

/** `tsx ops/emulators/main.ts`: the WhatsApp Cloud API emulator as a process, configured from the environment. */

const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === '' ? undefined : v), schema.optional())

const EmulatorEnv = z.object({
  EMULATOR_PORT: z.coerce.number().int().min(0).max(65535).default(4010),
  EMULATOR_HOST: z.string().default('127.0.0.1'),
  EMULATOR_WEBHOOK_URL: optional(z.url()),
  EMULATOR_APP_SECRET: optional(z.string()),
  // Comma-separated; unset accepts any non-empty bearer token.
  EMULATOR_ACCESS_TOKENS: optional(z.string()),
  EMULATOR_API_VERSION: optional(z.string().regex(/^v\d+\.\d+$/)),
  EMULATOR_STATUS_DELAY_MS: z.coerce.number().int().min(0).default(300),
  EMULATOR_AUTO_STATUSES: z.enum(['true', 'false', '1', '0']).default('true'),
  EMULATOR_WABA_ID: optional(z.string()),
  EMULATOR_DISPLAY_PHONE_NUMBER: optional(z.string()),
})

const env = parseEnvOrExit(EmulatorEnv, 'whatsapp')

const emulator = await startWhatsAppEmulator({
  port: env.EMULATOR_PORT,
  host: env.EMULATOR_HOST,
  apiVersion: env.EMULATOR_API_VERSION,
  webhookUrl: env.EMULATOR_WEBHOOK_URL,
  appSecret: env.EMULATOR_APP_SECRET,
  accessTokens: env.EMULATOR_ACCESS_TOKENS?.split(',').map((t) => t.trim()).filter(Boolean),
  statusDelayMs: env.EMULATOR_STATUS_DELAY_MS,
  autoStatuses: env.EMULATOR_AUTO_STATUSES === 'true' || env.EMULATOR_AUTO_STATUSES === '1',
  wabaId: env.EMULATOR_WABA_ID,
  displayPhoneNumber: env.EMULATOR_DISPLAY_PHONE_NUMBER,
})

console.log(`whatsapp emulator listening on ${emulator.url}`)
if (env.EMULATOR_WEBHOOK_URL && env.EMULATOR_APP_SECRET) console.log(`status webhooks -> ${env.EMULATOR_WEBHOOK_URL}`)
else console.log('status webhooks off (set EMULATOR_WEBHOOK_URL and EMULATOR_APP_SECRET)')

stopOnSignals(() => emulator.stop())
