import type { Logger } from './logger.js'

export type ShutdownStep = [name: string, fn: () => Promise<unknown>]

export interface Shutdown {
  readonly shuttingDown: boolean
  /** Sets the steps once everything has started; a signal that arrived while starting is acted on now. */
  run: (steps: ShutdownStep[]) => void
}

// A terminal's Ctrl-C signals every process of the foreground group, and a parent in that group (npm, tsx) may relay
// the same signal to us as well: one keypress can arrive twice, usually within milliseconds, but on a loaded machine
// the relayed copy was seen to arrive after more than a second, and under the full test suite's load after more than
// 2.5 s, and once, with the campaigns and assessments services added, more than 5 s (npm start then exited 130
// half-way through the shutdown). A second Ctrl-C meant as such comes later than that; the shutdown itself is cut off
// after 25 s anyway.
const SAME_KEYPRESS_MS = 10_000

/**
 * On SIGINT/SIGTERM, runs the steps once, in order, then exits 0. Install it before starting anything: a signal that
 * arrives while the process is still starting (the database is up, the servers are not yet) waits for the start to
 * finish and then stops everything in order, rather than killing the process half-way. A second signal (a second
 * Ctrl-C, not the echo of the first) exits at once, for the impatient operator; a hung shutdown is cut off after
 * `timeoutMs`.
 */
export function onShutdown(log: Logger, steps?: ShutdownStep[], timeoutMs = 25_000): Shutdown {
  let current: ShutdownStep[] | null = steps ?? null
  let signalledAt = 0
  let started = false
  const state = {
    shuttingDown: false,
    run: (next: ShutdownStep[]) => {
      current = next
      if (state.shuttingDown) execute()
    },
  }
  const execute = () => {
    if (started || !current) return
    started = true
    const todo = current
    void (async () => {
      for (const [name, fn] of todo) {
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
  const handler = (signal: NodeJS.Signals) => {
    if (state.shuttingDown) {
      if (Date.now() - signalledAt < SAME_KEYPRESS_MS) return
      log.warn({ signal }, 'second signal: exiting now')
      process.exit(130)
    }
    state.shuttingDown = true
    signalledAt = Date.now()
    log.info({ signal }, current ? 'shutting down' : 'shutting down once started')
    const timer = setTimeout(() => {
      log.error('shutdown took too long; exiting')
      process.exit(1)
    }, timeoutMs)
    timer.unref()
    execute()
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
  return state
}

/**
 * Closes an HTTP app gracefully: no new connections, requests in flight finish. Node closes the keep-alive
 * connections that are idle when close begins, but one that finishes its response afterwards stays open until its
 * keep-alive timeout and holds the close (and the process) for that long; close each as soon as it falls idle.
 */
export async function closeHttpApp(app: { close: () => PromiseLike<unknown>; server: { closeIdleConnections: () => void } }): Promise<void> {
  const sweep = setInterval(() => app.server.closeIdleConnections(), 50)
  try {
    await app.close()
  } finally {
    clearInterval(sweep)
  }
}
