import type { FastifyInstance } from 'fastify'
import type { Sql } from '../db.js'
import { type MigrationFile, pendingMigrations } from '../migrate.js'

/**
 * /healthz: the process is alive (for restarts). /readyz: the database answers and every migration file on disk is
 * applied (for load balancers: a new release is not sent traffic before its migrations ran).
 */
export function registerHealthRoutes(app: FastifyInstance, deps: { sql: Sql; migrations: MigrationFile[]; isShuttingDown: () => boolean }): void {
  app.get('/healthz', { config: { access: 'public' }, schema: { hide: true } }, async () => ({ status: 'ok' }))

  app.get('/readyz', { config: { access: 'public' }, schema: { hide: true } }, async (_req, reply) => {
    if (deps.isShuttingDown()) return reply.code(503).send({ status: 'shutting_down' })
    try {
      const pending = await withTimeout(pendingMigrations(deps.sql, deps.migrations), 2000)
      if (pending.length > 0) return reply.code(503).send({ status: 'migrations_pending', pending })
      return { status: 'ready' }
    } catch {
      return reply.code(503).send({ status: 'database_unavailable' })
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
