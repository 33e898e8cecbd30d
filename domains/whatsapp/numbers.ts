import { sha256, type SecretBox } from '../../lib/crypto.js'
import { type Sql, type Tx, withTenant } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import type { Logger } from '../../lib/logger.js'
import { insertAuditEntry } from '../tenancy/queries.js'
import { type GraphClient, isGraphApiError } from './graph/client.js'
import { appKeyOf } from './app-secrets.js'
import * as q from './queries.js'
import type { RegisterNumberBody } from './schemas.js'

/**
 * Registers a tenant's WhatsApp number. Tokens and app secrets are sealed with SECRETS_KEY before they reach the
 * database; the verify token is kept only as a hash (the handshake compares hashes). An own app is also recorded by
 * its key (a keyed fingerprint of its secret): deliveries it signs may only reach numbers registered with that key.
 */
export async function registerPhoneNumber(
  sql: Sql, secrets: SecretBox, tenantId: string, actor: string, input: RegisterNumberBody, requestId?: string, options: { graph?: GraphClient; log?: Logger } = {},
) {
  const registered = await withTenant(sql, tenantId, (tx) => registerPhoneNumberIn(tx, secrets, tenantId, actor, input, requestId))
  if (!options.graph) return registered
  // After the commit, not inside it: no transaction is held open across a call to Meta.
  const tier = await askMessagingLimit(options.graph, input.phoneNumberId, input.accessToken, options.log)
  if (!tier) return registered
  return withTenant(sql, tenantId, async (tx) => {
    await q.recordMessagingLimit(tx, registered.id, tier)
    return (await q.findPhoneNumber(tx, registered.id)) ?? registered
  })
}

/**
 * The number's messaging limit tier from Meta (GET /{phone-number-id}), asked when it is registered so a broadcast
 * does not assume TIER_250 until a phone_number_quality_update webhook says otherwise. Best effort: any failure (Meta
 * unreachable, a refusal, an answer without the field) is logged by code and gives null, and the registration stands
 * with the limit unknown (TIER_250 for the broadcasts).
 */
export async function askMessagingLimit(graph: GraphClient, phoneNumberId: string, accessToken: string, log?: Logger): Promise<string | null> {
  try {
    return await graph.getMessagingLimit({ phoneNumberId, accessToken })
  } catch (err) {
    log?.warn({ metaCode: isGraphApiError(err) ? err.code : null, httpStatus: isGraphApiError(err) ? err.httpStatus : null }, 'could not ask Meta for the messaging limit tier; keeping the default')
    return null
  }
}

/** Records a tier already asked (onboarding asks it with the profile check, before its step's transaction). */
export const recordMessagingLimit = (tx: Tx, numberId: string, tier: string) => q.recordMessagingLimit(tx, numberId, tier)

/**
 * registerPhoneNumber inside the caller's transaction (under tenantId), for onboarding, whose step commits with the
 * registration. A taken number or WABA is a 409; the caller's transaction is then aborted, so nothing half-done stays.
 */
export async function registerPhoneNumberIn(tx: Tx, secrets: SecretBox, tenantId: string, actor: string, input: RegisterNumberBody, requestId?: string) {
  try {
    return await tx.savepoint(async (tx) => {
      const account = await q.upsertBusinessAccount(tx, tenantId, input.wabaId)
      const own = input.app.mode === 'own' ? input.app : null
      const { id } = await q.insertPhoneNumber(tx, {
        tenantId,
        businessAccountId: account.id,
        phoneNumberId: input.phoneNumberId,
        displayPhoneNumber: input.displayPhoneNumber,
        verifiedName: input.verifiedName ?? null,
        appMode: input.app.mode,
        metaAppId: own?.appId ?? null,
        appSecretSealed: own ? secrets.seal(own.appSecret) : null,
        appKey: own ? Buffer.from(appKeyOf(secrets, own.appSecret), 'hex') : null,
        verifyTokenHash: own ? sha256(own.verifyToken) : null,
        accessTokenSealed: secrets.seal(input.accessToken),
      })
      await insertAuditEntry(tx, { tenantId, actor, action: 'whatsapp_number.registered', targetType: 'whatsapp_number', targetId: id, details: { phoneNumberId: input.phoneNumberId, wabaId: input.wabaId, appMode: input.app.mode }, requestId })
      return (await q.findPhoneNumber(tx, id))!
    })
  } catch (err) {
    const code = (err as { code?: string }).code
    // 23505: the phone number id is taken. 42501: the WABA's row belongs to another tenant: waba_id is unique across
    // tenants, so the upsert meets that row, and RLS refuses to update a row this tenant cannot see. A WABA held by
    // one tenant can never be claimed by another, whatever the app mode (tested in app-binding.int.test.ts).
    if (code === '23505' || code === '42501') {
      throw new AppError('CONFLICT', 'this WhatsApp number or business account is already registered')
    }
    throw err
  }
}

export async function updatePhoneNumber(sql: Sql, secrets: SecretBox, tenantId: string, actor: string, id: string, change: { accessToken?: string; status?: 'active' | 'disabled' }, requestId?: string) {
  return withTenant(sql, tenantId, async (tx) => {
    const updated = await q.updatePhoneNumber(tx, id, {
      accessTokenSealed: change.accessToken ? secrets.seal(change.accessToken) : undefined,
      status: change.status,
    })
    if (!updated) return null
    await insertAuditEntry(tx, { tenantId, actor, action: 'whatsapp_number.updated', targetType: 'whatsapp_number', targetId: id, details: { tokenRotated: !!change.accessToken, status: change.status }, requestId })
    return q.findPhoneNumber(tx, id)
  })
}
