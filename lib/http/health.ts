import type { FastifyInstance } from 'fastify'
import type { Sql } from '../db.js'
import { AppError } from '../errors.js'
import { type MigrationFile, pendingMigrations } from '../migrate.js'
import { sendError } from './error-handler.js'

/**
 * /healthz: the process is alive (for restarts); it never asks the database, so an outage does not get every instance
 * restarted. /readyz: the database answers and every migration file on disk is applied (for load balancers: a new
 * release is not sent traffic before its migrations ran). While the database is away readyz answers 503 in the
 * product's error shape with Retry-After, like every other route, and turns 200 again by itself when it returns.
 */
/** What a client is told to wait while the database is away; lib/http/error-handler.ts gives every other route the same. */
export const DATABASE_RETRY_AFTER_SECONDS = 5

export function registerHealthRoutes(app: FastifyInstance, deps: { sql: Sql; migrations: MigrationFile[]; isShuttingDown: () => boolean }): void {
  app.get('/healthz', { config: { access: 'public' }, schema: { hide: true } }, async () => ({ status: 'ok' }))

  app.get('/readyz', { config: { access: 'public' }, schema: { hide: true } }, async (req, reply) => {
    if (deps.isShuttingDown()) return reply.code(503).send({ status: 'shutting_down' })
    try {
      const pending = await withTimeout(pendingMigrations(deps.sql, deps.migrations), 2000)
      if (pending.length > 0) return reply.code(503).send({ status: 'migrations_pending', pending })
      return { status: 'ready' }
    } catch {
      return sendError(reply, req, new AppError('UNAVAILABLE', 'the database is not answering; retry later', {
        details: { status: 'database_unavailable' },
        headers: { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) },
      }))
    }
  })
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ms)
    }),
  ])
}
