import { createHmac } from 'node:crypto'

/**
 * Meta's webhook signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed by the app secret>`.
 * It covers the exact bytes sent, so callers sign the string they are about to send, never a re-serialisation.
 *
 * Deliberately not domains/whatsapp/signature.ts: the emulator plays Meta, and a Meta that signed with the very
 * function the service verifies with would let a bug in that function pass every end-to-end test.
 */
export const metaSignature = (appSecret: string, rawBody: string | Buffer): string =>
  `sha256=${createHmac('sha256', appSecret).update(rawBody).digest('hex')}`
