import { z } from 'zod'
import { startPosthogEmulator } from './posthog.js'

/** `npm run emulator:posthog`: the PostHog capture emulator as a process, configured from the environment. */

const Env = z.object({
  POSTHOG_EMULATOR_PORT: z.coerce.number().int().min(0).max(65535).default(4020),
  EMULATOR_HOST: z.string().default('127.0.0.1'),
  // Comma-separated project API keys; unset accepts any non-empty key.
  POSTHOG_EMULATOR_API_KEYS: z.preprocess((v) => (v === '' ? undefined : v), z.string().optional()),
})
const parsed = Env.safeParse(process.env)
if (!parsed.success) {
  const issue = parsed.error.issues[0]
  console.error(`posthog emulator: bad ${String(issue?.path[0])}: ${issue?.message}`)
  process.exit(1)
}
const env = parsed.data
const emulator = await startPosthogEmulator({
  port: env.POSTHOG_EMULATOR_PORT,
  host: env.EMULATOR_HOST,
  apiKeys: env.POSTHOG_EMULATOR_API_KEYS?.split(',').map((k) => k.trim()).filter(Boolean),
})
console.log(`posthog emulator listening on ${emulator.url} (POST /batch/, /capture/, /e/, /i/v0/e/; GET /_emulator/received)`)
let stopping = false
const shutdown = () => {
  if (stopping) process.exit(130)
  stopping = true
  void emulator.stop().then(() => process.exit(0))
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)
