import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
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
  // Defence in depth: a value the database cannot read as its column's type (a number beyond bigint, a malformed
  // uuid or timestamp) came from a request that validation should have refused. It is the caller's 400, not our
  // 500; the warning (with the route, never the value) says which schema needs tightening.
  if (typeof pgCode === 'string' && DATA_EXCEPTIONS.has(pgCode)) {
    request.log.warn({ pgCode, route: request.routeOptions?.url }, 'database refused a request value that validation let through')
    return new AppError('BAD_REQUEST', 'a value in the request is malformed or out of range')
  }
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

// invalid_text_representation, numeric_value_out_of_range, invalid_datetime_format, datetime_field_overflow.
const DATA_EXCEPTIONS = new Set(['22P02', '22003', '22007', '22008'])

/**
 * Errors Fastify raises before a route is chosen: a path whose percent-encoding is invalid (`/v1/leads/%zz`), a
 * path parameter beyond the router's length limit. Without this they would be Fastify's own JSON shape.
 */
export function answerFrameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  // onRequest hooks do not run for these, so the request id header is set here.
  reply.header('x-request-id', request.id)
  const error =
    err.code === 'FST_ERR_BAD_URL' ? new AppError('BAD_REQUEST', 'the URL is not valid: a path segment is not correctly percent-encoded')
      : err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? new AppError('BAD_REQUEST', 'the URL is not valid: a path segment is too long')
        : toAppError(err, request)
  void sendError(reply, request, error)
}

/**
 * Errors of the HTTP connection itself, before Fastify has a request: headers beyond Node's limit (431), a client
 * too slow to send its headers or its body (408), bytes that are not HTTP (400). Answered in the one error shape
 * when nothing has been written on the socket yet, then the connection is closed. Bound to the Fastify instance.
 */
export function answerClientError(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  // A reset connection is gone: there is nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const error =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? new AppError('REQUEST_TIMEOUT', 'the request did not arrive in time; the connection is closed')
      : err.code === 'HPE_HEADER_OVERFLOW' ? new AppError('HEADERS_TOO_LARGE', 'the request headers are too large')
        : new AppError('BAD_REQUEST', 'the request is not valid HTTP')
  const requestId = randomUUID()
  // Only the codes: the raw packet may carry a caller's headers or body.
  this.log.info({ requestId, errCode: err.code, status: error.status }, 'client error before routing')
  // Node's own rule: write only if no response has started on this socket, else the bytes would corrupt it.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (socket.writable && !inFlight?.headersSent) {
    const body = JSON.stringify({ error: { code: error.code, message: error.message, requestId } } satisfies ErrorBody)
    socket.write(
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\n` +
        'content-type: application/json; charset=utf-8\r\n' +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        `x-request-id: ${requestId}\r\n` +
        'connection: close\r\n\r\n' +
        body,
    )
  }
  socket.destroy()
}

export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => sendError(reply, request, toAppError(err, request)))
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, request, new AppError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)),
  )
}
