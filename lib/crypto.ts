import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'

export const sha256 = (input: string | Buffer): Buffer => createHash('sha256').update(input).digest()

/** Compares two secrets in constant time, including when their lengths differ. */
export function safeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const ha = sha256(a)
  const hb = sha256(b)
  return timingSafeEqual(ha, hb)
}

export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url')

/**
 * AES-256-GCM for secrets at rest (tenants' Meta access tokens and app secrets). The stored form is
 * `v1.<iv>.<tag>.<ciphertext>` in base64url, so the scheme can change later without guessing.
 */
export class SecretBox {
  private readonly key: Buffer

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('SECRETS_KEY must decode to 32 bytes')
    this.key = key
  }

  static fromConfig(value: string | undefined): SecretBox {
    if (!value) {
      // Development fallback only; config validation refuses this in production.
      return new SecretBox(sha256('wa-platform development secrets key'))
    }
    const key = /^[0-9a-f]{64}$/i.test(value) ? Buffer.from(value, 'hex') : Buffer.from(value, 'base64')
    return new SecretBox(key)
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.key, iv)
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.')
  }

  open(sealed: string): string {
    const [version, iv, tag, body] = sealed.split('.')
    if (version !== 'v1' || !iv || !tag || body === undefined) throw new Error('unrecognised sealed secret')
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'))
    decipher.setAuthTag(Buffer.from(tag, 'base64url'))
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8')
  }

  /**
   * A keyed fingerprint of a secret: HMAC-SHA256 under a key derived from SECRETS_KEY for this `purpose`. Equal
   * secrets give equal fingerprints, so a secret can be recognised (compared in SQL) without being stored again,
   * and a copy of the database alone gives nothing to brute-force.
   */
  fingerprint(purpose: string, value: string): Buffer {
    const key = createHmac('sha256', this.key).update(`fingerprint:${purpose}`).digest()
    return createHmac('sha256', key).update(value, 'utf8').digest()
  }
}

/** SECRETS_KEY as bytes; unset means the development key as SecretBox reads it (config validation refuses that in production). */
function secretsKeyBytes(value: string | undefined): Buffer {
  if (!value) return sha256('wa-platform development secrets key')
  return /^[0-9a-f]{64}$/i.test(value) ? Buffer.from(value, 'hex') : Buffer.from(value, 'base64')
}

/**
 * Keyed pseudonyms for identifiers that must not be written in clear where logs and tools show them (a recipient's
 * phone number in a job key or queue name): HMAC-SHA256 under a key derived from SECRETS_KEY. The same input gives
 * the same pseudonym in every process sharing the key (so job-key deduplication holds); without the key nobody can
 * test a guessed number against it, which a plain sha256 of a phone (a small space) would allow.
 */
export class Pseudonyms {
  private readonly key: Buffer

  constructor(secretsKey: Buffer) {
    this.key = Buffer.from(hkdfSync('sha256', secretsKey, Buffer.alloc(0), 'wa-platform pseudonyms v1', 32))
  }

  static fromConfig(value: string | undefined): Pseudonyms {
    return new Pseudonyms(secretsKeyBytes(value))
  }

  /** 128 bits, base64url (22 characters); `purpose` separates uses so one pseudonym cannot be matched with another. */
  of(purpose: string, value: string): string {
    return createHmac('sha256', this.key).update(purpose).update('\0').update(value).digest().subarray(0, 16).toString('base64url')
  }
}

let processPseudonyms = Pseudonyms.fromConfig(undefined)

/** Each entry point sets the process's key from its config once at boot (lib/boot.ts); tests use the development key. */
export function configurePseudonyms(secretsKey: string | undefined): void {
  processPseudonyms = Pseudonyms.fromConfig(secretsKey)
}

export const pseudonym = (purpose: string, value: string): string => processPseudonyms.of(purpose, value)
