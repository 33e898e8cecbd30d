import type { Logger } from './logger.js'

/**
 * Runs the given steps once, in order, on SIGINT/SIGTERM, then exits. A second signal exits at once, for the
 * impatient operator; a hung step is cut off after `timeoutMs`.
 */
export function onShutdown(log: Logger, steps: Array<[name: string, fn: () => Promise<unknown>]>, timeoutMs = 25_000): { readonly shuttingDown: boolean } {
  const state = { shuttingDown: false }
  const handler = (signal: NodeJS.Signals) => {
    if (state.shuttingDown) {
      log.warn({ signal }, 'second signal: exiting now')
      process.exit(130)
    }
    state.shuttingDown = true
    log.info({ signal }, 'shutting down')
    const timer = setTimeout(() => {
      log.error('shutdown took too long; exiting')
      process.exit(1)
    }, timeoutMs)
    timer.unref()
    void (async () => {
      for (const [name, fn] of steps) {
        try {
          await fn()
          log.info(`${name} stopped`)
        } catch (err) {
          log.error({ err }, `${name} failed to stop cleanly`)
        }
      }
      process.exit(0)
    })()
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
  return state
}
