import { z } from 'zod'
import { startAiEmulator } from './ai-provider.js'
import { parseEnvOrExit, stopOnSignals } from './process.js'

/** `npm run emulator:ai`: the OpenAI-compatible chat completions emulator as a process (AI_BASE_URL=<url>/v1). */

const Env = z.object({
  AI_EMULATOR_PORT: z.coerce.number().int().min(0).max(65535).default(4030),
  EMULATOR_HOST: z.string().default('127.0.0.1'),
  // Comma-separated API keys; unset accepts any non-empty key.
  AI_EMULATOR_API_KEYS: z.preprocess((v) => (v === '' ? undefined : v), z.string().optional()),
})
const env = parseEnvOrExit(Env, 'ai')
const emulator = await startAiEmulator({
  port: env.AI_EMULATOR_PORT,
  host: env.EMULATOR_HOST,
  apiKeys: env.AI_EMULATOR_API_KEYS?.split(',').map((k) => k.trim()).filter(Boolean),
})
console.log(`ai provider emulator listening on ${emulator.url} (POST /v1/chat/completions; GET /_emulator/received); AI_BASE_URL=${emulator.baseUrl}`)
stopOnSignals(() => emulator.stop())
