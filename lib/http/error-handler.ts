import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod'
import { isDatabaseUnavailable } from '../db.js'
import { AppError, ERROR_STATUS, type ErrorCode } from '../errors.js'

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown; requestId: string }
}

const CODE_BY_STATUS = Object.fromEntries(Object.entries(ERROR_STATUS).map(([code, status]) => [status, code])) as Record<number, ErrorCode>

export function sendError(reply: FastifyReply, request: FastifyRequest, error: AppError): FastifyReply {
  if (error.headers) reply.headers(error.headers)
  const body: ErrorBody = { error: { code: error.code, message: error.message, requestId: request.id } }
  if (error.details !== undefined) body.error.details = error.details
  return reply.code(error.status).type('application/json; charset=utf-8').send(body)
}

/** Turns anything thrown into the one error shape. Unexpected errors are logged and their message hidden. */
export function toAppError(err: unknown, request: FastifyRequest): AppError {
  if (err instanceof AppError) return err

  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = err.validationContext ?? 'request'
    const details = err.validation.map((v) => ({
      in: where,
      path: v.instancePath.replace(/^\//, '').replace(/\//g, '.'),
      message: v.message,
    }))
    const fields = details.map((d) => (d.path ? `${where}.${d.path}` : where)).join(', ')
    return new AppError('BAD_REQUEST', `invalid ${fields}`, { details })
  }

  const pgCode = (err as { code?: unknown }).code
  if (pgCode === '23505') {
    return new AppError('CONFLICT', 'a record with the same unique value already exists', {
      details: { constraint: (err as { constraint_name?: string }).constraint_name },
    })
  }
  if (pgCode === '23503') return new AppError('CONFLICT', 'the change refers to a record that does not exist or is still in use')
  if (isDatabaseUnavailable(err)) {
    request.log.warn({ err }, 'database unavailable')
    return new AppError('UNAVAILABLE', 'the service is temporarily unavailable; retry later', { headers: { 'retry-after': '5' } })
  }

  const fe = err as FastifyError
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code = CODE_BY_STATUS[fe.statusCode] ?? 'BAD_REQUEST'
    // Fastify's own client errors (bad JSON, wrong content type, body too large) carry a precise message.
    const message = code === 'BAD_REQUEST' && fe.code?.startsWith('FST_ERR_CTP') ? `invalid request body: ${fe.message}` : fe.message
    return new AppError(code, message)
  }

  request.log.error({ err }, 'unhandled error')
  return new AppError('INTERNAL', 'internal error')
}

export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => sendError(reply, request, toAppError(err, request)))
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, request, new AppError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)),
  )
}
