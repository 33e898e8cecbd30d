import type { z } from 'zod'

/** An emulator's settings from the environment; a bad value stops the process with one line naming it. */
export function parseEnvOrExit<T extends z.ZodType>(schema: T, emulator: string): z.infer<T> {
  const parsed = schema.safeParse(process.env)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]
  console.error(`${emulator} emulator: bad ${String(issue?.path[0])}: ${issue?.message}`)
  process.exit(1)
}

/** Ctrl-C or SIGTERM stops the emulator and exits 0; a second Ctrl-C while stopping exits at once (130). */
export function stopOnSignals(stop: () => Promise<void>): void {
  let stopping = false
  const shutdown = () => {
    if (stopping) process.exit(130)
    stopping = true
    void stop().then(() => process.exit(0))
  }
  process.on('SIGINT', shutdown)
  process.on('SIGTERM', shutdown)
}
