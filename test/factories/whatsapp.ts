import { randomInt } from 'node:crypto'
import { SecretBox } from '../../lib/crypto.js'
import type { Sql } from '../../lib/db.js'
import { registerPhoneNumber } from '../../domains/whatsapp/numbers.js'
import type { TestTenant } from './tenants.js'

export const testSecrets = SecretBox.fromConfig(undefined)
export const PLATFORM_APP_SECRET = 'dev-meta-app-secret'

const digits = (n: number) => Array.from({ length: n }, () => randomInt(10)).join('')

export interface TestNumber {
  id: string
  phoneNumberId: string
  wabaId: string
  displayPhoneNumber: string
}

/** A registered WhatsApp number on the platform app (or the tenant's own app, with its secret and verify token). */
export async function makePhoneNumber(
  sql: Sql,
  tenant: TestTenant,
  overrides: { phoneNumberId?: string; wabaId?: string; app?: { mode: 'own'; appSecret: string; verifyToken: string } } = {},
): Promise<TestNumber> {
  const phoneNumberId = overrides.phoneNumberId ?? `1${digits(14)}`
  const wabaId = overrides.wabaId ?? `2${digits(14)}`
  const displayPhoneNumber = `+1 555 ${digits(3)} ${digits(4)}`
  const view = await registerPhoneNumber(sql, testSecrets, tenant.id, 'test', {
    phoneNumberId, wabaId, displayPhoneNumber, accessToken: `EAAG${digits(40)}`, app: overrides.app ?? { mode: 'platform' },
  })
  return { id: view.id, phoneNumberId, wabaId, displayPhoneNumber }
}
