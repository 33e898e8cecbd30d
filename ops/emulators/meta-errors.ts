import { randomBytes } from 'node:crypto'

/**
 * The Graph API errors the emulator can answer with: code, HTTP status, message and details as Meta documents them
 * (Cloud API "Error codes" page). Meta's `message` carries the title after a `(#code)` prefix; OAuth errors (190)
 * have their own wording and no prefix.
 */
export interface MetaErrorSpec {
  httpStatus: number
  message: string
  details?: string
  subcode?: number
}

export const META_ERRORS: Record<number, MetaErrorSpec> = {
  // Graph API temporary errors.
  1: { httpStatus: 500, message: 'An unknown error occurred', details: 'Possibly a temporary issue due to downtime.' },
  2: { httpStatus: 503, message: 'An unexpected error has occurred. Please retry your request later.', details: 'Temporary due to downtime or overload.' },
  4: { httpStatus: 400, message: '(#4) Application request limit reached', details: 'The app has reached its API call rate limit.' },
  // Invalid parameter.
  100: { httpStatus: 400, message: '(#100) Invalid parameter', details: 'The request included one or more unsupported or misspelled parameters.' },
  // Expired or invalid access token; subcode 463 is "session has expired".
  190: { httpStatus: 401, message: 'Error validating access token: Session has expired.', subcode: 463 },
  80007: { httpStatus: 400, message: '(#80007) Rate limit issues', details: 'The WhatsApp Business Account has reached its rate limit.' },
  // Throughput: 80 messages/second per business number by default.
  130429: { httpStatus: 400, message: '(#130429) Rate limit hit', details: 'Cloud API message throughput has been reached.' },
  131000: { httpStatus: 500, message: '(#131000) Something went wrong', details: 'Message failed to send due to an unknown error.' },
  131016: { httpStatus: 503, message: '(#131016) Service unavailable', details: 'A service is temporarily unavailable.' },
  131026: {
    httpStatus: 400,
    message: '(#131026) Message undeliverable',
    details: 'Unable to deliver message. The recipient may not be a WhatsApp user, may not have accepted the terms, or may use an old client.',
  },
  131047: {
    httpStatus: 400,
    message: '(#131047) Re-engagement message',
    details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.',
  },
  131048: { httpStatus: 400, message: '(#131048) Spam rate limit hit', details: 'Message failed to send because there are restrictions on how many messages can be sent from this phone number.' },
  131049: { httpStatus: 400, message: '(#131049) This message was not delivered to maintain healthy ecosystem engagement.', details: 'Per-user marketing message limit.' },
  131056: {
    httpStatus: 400,
    message: '(#131056) (Business Account, Consumer Account) pair rate limit hit',
    details: 'Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.',
  },
  132000: { httpStatus: 400, message: '(#132000) Number of parameters does not match the expected number of params', details: 'The number of variable parameter values does not match the template.' },
  132001: { httpStatus: 404, message: '(#132001) Template name does not exist in the translation', details: 'The template does not exist in the specified language or has not been approved.' },
  132005: { httpStatus: 400, message: '(#132005) Translated text too long', details: 'Translated text is too long.' },
  132007: { httpStatus: 400, message: '(#132007) Template Format Character Policy Violated', details: 'Template content violates a WhatsApp policy.' },
  132012: { httpStatus: 400, message: '(#132012) Parameter format does not match format in the created template', details: 'Variable parameter values formatted incorrectly.' },
  132015: { httpStatus: 400, message: '(#132015) Template is Paused', details: 'Template is paused due to low quality.' },
  132016: { httpStatus: 400, message: '(#132016) Template is Disabled', details: 'Template has been paused too many times due to low quality and is now permanently disabled.' },
  133004: { httpStatus: 503, message: '(#133004) Server temporarily unavailable', details: 'Server is temporarily unavailable.' },
}

/** Meta's fbtrace ids look like `AbCdEf...`: opaque, 20-odd url-safe characters. */
export const fbtraceId = (): string => `A${randomBytes(16).toString('base64url').slice(0, 22)}`

export interface GraphErrorResponse {
  httpStatus: number
  body: { error: Record<string, unknown> }
}

/**
 * A Graph error body. `code` may be a Meta code from the table, an unknown Meta code (answered 400), or an HTTP
 * status 500-599 (answered with that status and Graph code 2, "service unavailable").
 */
export function graphError(code: number, overrides: { details?: string; message?: string; httpStatus?: number } = {}): GraphErrorResponse {
  const spec: MetaErrorSpec =
    META_ERRORS[code] ??
    (code >= 500 && code <= 599
      ? { httpStatus: code, message: 'An unexpected error has occurred. Please retry your request later.', details: 'Temporary due to downtime or overload.' }
      : { httpStatus: 400, message: `(#${code}) Error`, details: `Emulated error ${code}.` })
  const metaCode = code >= 500 && code <= 599 && !META_ERRORS[code] ? 2 : code
  const details = overrides.details ?? spec.details
  return {
    httpStatus: overrides.httpStatus ?? spec.httpStatus,
    body: {
      error: {
        message: overrides.message ?? spec.message,
        type: 'OAuthException',
        code: metaCode,
        ...(spec.subcode !== undefined ? { error_subcode: spec.subcode } : {}),
        ...(details !== undefined ? { error_data: { messaging_product: 'whatsapp', details } } : {}),
        fbtrace_id: fbtraceId(),
      },
    },
  }
}
