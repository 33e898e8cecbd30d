import { z } from 'zod'
import { parseEnvOrExit, stopOnSignals } from './process.js'
import { startPosthogEmulator } from './posthog.js'

/** `npm run emulator:posthog`: the PostHog capture emulator as a process, configured from the environment. */

const Env = z.object({
  POSTHOG_EMULATOR_PORT: z.coerce.number().int().min(0).max(65535).default(4020),
  EMULATOR_HOST: z.string().default('127.0.0.1'),
  // Comma-separated project API keys; unset accepts any non-empty key.
  POSTHOG_EMULATOR_API_KEYS: z.preprocess((v) => (v === '' ? undefined : v), z.string().optional()),
})
const env = parseEnvOrExit(Env, 'posthog')
const emulator = await startPosthogEmulator({
  port: env.POSTHOG_EMULATOR_PORT,
  host: env.EMULATOR_HOST,
  apiKeys: env.POSTHOG_EMULATOR_API_KEYS?.split(',').map((k) => k.trim()).filter(Boolean),
})
console.log(`posthog emulator listening on ${emulator.url} (POST /batch/, /capture/, /e/, /i/v0/e/; GET /_emulator/received)`)
stopOnSignals(() => emulator.stop())
