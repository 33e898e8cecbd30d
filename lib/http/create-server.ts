import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import type { Logger } from 'pino'
import { registerErrorHandlers } from './error-handler.js'
import { registerStorableTextChecks } from './safe-json.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call a route; enforced by the service's auth plugin. */
    access?: 'public' | 'tenant:read' | 'tenant:write' | 'operator'
  }
}

export type App = FastifyInstance<any, any, any, FastifyBaseLogger, ZodTypeProvider>

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/

export function createHttpServer(options: { logger: Logger; bodyLimit: number; trustProxy: boolean | number | string[] }): App {
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimit,
    // false by default: X-Forwarded-For is a client-controlled header unless a known proxy sets it.
    trustProxy: options.trustProxy as boolean,
    // A caller's (or proxy's) request id is kept so logs can be joined across hops; otherwise we make one.
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<ZodTypeProvider>() as unknown as App

  // JSON only unless a route adds a parser (public forms add urlencoded): anything else is answered with 415.
  app.removeContentTypeParser('text/plain')
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
  registerErrorHandlers(app as unknown as FastifyInstance)
  // NUL, lone surrogates and too-deep bodies are a 400 naming the field, before any route sees them.
  registerStorableTextChecks(app as unknown as FastifyInstance)
  return app
}
