import { randomUUID } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import type { Logger } from 'pino'
import { answerClientError, answerFrameworkError, registerErrorHandlers } from './error-handler.js'
import { registerStorableTextChecks } from './safe-json.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call a route; enforced by the service's auth plugin. */
    access?: 'public' | 'tenant:read' | 'tenant:write' | 'operator' | 'partner'
  }
}

export type App = FastifyInstance<any, any, any, FastifyBaseLogger, ZodTypeProvider>

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/

export interface HttpTimeouts {
  HTTP_HEADERS_TIMEOUT_MS: number
  HTTP_REQUEST_TIMEOUT_MS: number
  HTTP_KEEP_ALIVE_TIMEOUT_MS: number
}

export function createHttpServer(options: {
  logger: Logger
  bodyLimit: number
  trustProxy: boolean | number | string[]
  /** From config: how long a client may take to send its headers and its whole request. */
  timeouts: HttpTimeouts
}): App {
  const t = options.timeouts
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
    // Slow clients (one byte every few seconds) are cut off: Node answers 408 once the headers, or the whole request,
    // have taken longer than these (checked every connectionsCheckingInterval, so the bound is timeout + interval).
    // A request's socket silent both ways for twice the request timeout is dead and destroyed (connectionTimeout).
    requestTimeout: t.HTTP_REQUEST_TIMEOUT_MS,
    connectionTimeout: Math.max(60_000, 2 * t.HTTP_REQUEST_TIMEOUT_MS),
    keepAliveTimeout: t.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    http: {
      headersTimeout: t.HTTP_HEADERS_TIMEOUT_MS,
      // Node's default checks every 30 s, which would let a trickler live 30 s past its timeout.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(t.HTTP_HEADERS_TIMEOUT_MS / 4))),
    },
    // Errors before routing (header overflow, timeouts, unparseable HTTP, bad percent-encoding) in the one shape.
    clientErrorHandler: answerClientError,
    frameworkErrors: answerFrameworkError,
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
  boundShutdown(app as unknown as FastifyInstance, t)
  return app
}

type ServerSocket = Socket & { _httpMessage?: ServerResponse | null }

/**
 * What Node does not do once server.close() has begun, so that shutdown is bounded whatever the clients do:
 * - it stops enforcing its header and request timeouts (it clears its connection checker), so a client trickling
 *   its headers or body would hold close() open for as long as it likes: from close on we enforce the same bounds,
 *   answering 408 and closing;
 * - a keep-alive connection whose response ends during close() stays open until HTTP_KEEP_ALIVE_TIMEOUT_MS (72 s
 *   by default): the responses in flight are made the last on their connections.
 * Requests already received are left to finish: that is the graceful part of the shutdown.
 */
function boundShutdown(app: FastifyInstance, t: HttpTimeouts): void {
  const sockets = new Set<ServerSocket>()
  app.server.on('connection', (socket: ServerSocket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  // Still receiving: no request being answered yet (headers arriving; idle ones Node closes itself), or one whose
  // body has not all arrived.
  const receiving = (socket: ServerSocket) => !socket._httpMessage || socket._httpMessage.req?.complete === false
  app.addHook('preClose', (done) => {
    for (const socket of sockets) {
      const res = socket._httpMessage
      if (res) {
        if (!res.headersSent) res.setHeader('connection', 'close')
        res.once('close', () => setImmediate(() => {
          if (!socket.destroyed && !socket._httpMessage) socket.destroySoon()
        }))
      }
      if (!receiving(socket)) continue
      const timer = setTimeout(() => {
        if (socket.destroyed || !receiving(socket)) return
        answerClientError.call(app, Object.assign(new Error('request timeout while closing'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), socket)
      }, res ? t.HTTP_REQUEST_TIMEOUT_MS : t.HTTP_HEADERS_TIMEOUT_MS)
      timer.unref()
      socket.once('close', () => clearTimeout(timer))
    }
    done()
  })
}
