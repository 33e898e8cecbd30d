import { z } from 'zod'
import type { SecretBox } from '../../lib/crypto.js'
import { type Sql, type Tx, withTenant } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import { decodeCursor, encodeCursor, keysetCursor } from '../../lib/pagination.js'
import { insertAuditEntry } from '../tenancy/queries.js'
import * as k from './catalog-queries.js'
import type {
  AddAssetBody, AddImageBody, ConnectIntegrationBody, CreateCreativeBody, CreateProductBody, PatchCreativeBody, PatchIntegrationBody, PatchProductBody,
  Platform, ProductImageView, ProductView, RecordAiGenerationBody, UpsertPublicationBody,
} from './schemas.js'
import { type Actor, assertVersion, conflictOnUnique } from './service.js'

/** The campaign builder's catalog: products and their images, creatives with versions and assets, integrations, publications, AI history. */

const audit = (tx: Tx, who: Actor, action: string, targetType: string, targetId: string, details: Record<string, unknown> = {}) =>
  insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action, targetType, targetId, details, requestId: who.requestId ?? undefined })
const missing = (what: string, id: string) => new AppError('NOT_FOUND', `${what} ${id} not found`)

const guardSku = <T>(fn: () => Promise<T>, sku: string | null | undefined) =>
  conflictOnUnique(fn, 'products_sku_key', `another product already has SKU ${sku}`, 'sku')

// ---------------------------------------------------------------------------------------------------------------
// Products.

export type ProductDetail = ProductView & { images: ProductImageView[] }

export const createProduct = (sql: Sql, who: Actor, body: CreateProductBody): Promise<ProductDetail> =>
  withTenant(sql, who.tenantId, async (tx) => {
    const p = await tx.savepoint((sp) => guardSku(() => k.insertProduct(sp, who.tenantId, body), body.sku))
    await audit(tx, who, 'product.created', 'product', p.id, { sku: p.sku })
    return { ...p, images: [] }
  })

export const getProduct = (sql: Sql, tenantId: string, id: string): Promise<ProductDetail | null> =>
  withTenant(sql, tenantId, async (tx) => {
    const p = await k.findProduct(tx, id, { includeDeleted: true })
    return p ? { ...p, images: await k.listImages(tx, [id]) } : null
  })

const ProductCursor = keysetCursor(z.uuid())
export const listProducts = (sql: Sql, tenantId: string, query: { deleted?: boolean; limit: number; cursor?: string }) =>
  withTenant(sql, tenantId, async (tx) => {
    const after = query.cursor ? decodeCursor(query.cursor, ProductCursor) : null
    const rows = await k.listProducts(tx, query.deleted ?? false, query.limit, after)
    const page = rows.slice(0, query.limit)
    const images = page.length ? await k.listImages(tx, page.map((p) => p.id)) : []
    const data = page.map(({ cursorAt: _c, ...p }) => ({ ...p, images: images.filter((i) => i.productId === p.id) }))
    const last = rows[query.limit - 1]
    return { data, nextCursor: rows.length > query.limit && last ? encodeCursor({ at: last.cursorAt, id: last.id }) : null }
  })

export const updateProduct = (sql: Sql, who: Actor, id: string, body: PatchProductBody): Promise<ProductDetail> =>
  withTenant(sql, who.tenantId, async (tx) => {
    const p = await k.findProduct(tx, id, { lock: true })
    if (!p) throw missing('product', id)
    const price = body.price !== undefined ? body.price : p.price
    const currency = body.currency !== undefined ? body.currency : p.currency
    if (price !== null && currency === null) throw new AppError('BAD_REQUEST', 'invalid body.currency', { details: [{ in: 'body', path: 'currency', message: 'a price needs its currency' }] })
    const updated = Object.keys(body).length ? await tx.savepoint((sp) => guardSku(() => k.updateProduct(sp, id, body), body.sku)) : p
    await audit(tx, who, 'product.updated', 'product', id, { fields: Object.keys(body) })
    return { ...updated, images: await k.listImages(tx, [id]) }
  })

export const setProductDeleted = (sql: Sql, who: Actor, id: string, deleted: boolean): Promise<ProductDetail> =>
  withTenant(sql, who.tenantId, async (tx) => {
    const p = await k.findProduct(tx, id, { lock: true, includeDeleted: true })
    if (!p || (deleted && p.deletedAt)) throw missing('product', id)
    const updated = !deleted && !p.deletedAt ? p : await tx.savepoint((sp) => guardSku(() => k.updateProduct(sp, id, { deletedAt: deleted ? 'now' : null }), p.sku))
    if (deleted || p.deletedAt) await audit(tx, who, deleted ? 'product.deleted' : 'product.restored', 'product', id)
    return { ...updated, images: await k.listImages(tx, [id]) }
  })

export const addProductImage = (sql: Sql, who: Actor, productId: string, body: AddImageBody) =>
  withTenant(sql, who.tenantId, async (tx) => {
    if (!(await k.findProduct(tx, productId, { lock: true }))) throw missing('product', productId)
    if (body.parentImageId) {
      const parent = await k.findImage(tx, productId, body.parentImageId)
      if (!parent) throw missing('image', body.parentImageId)
      if (parent.kind !== 'image') throw new AppError('BAD_REQUEST', 'invalid body.parentImageId', { details: [{ in: 'body', path: 'parentImageId', message: 'a background version is made from an image, not from another background' }] })
    }
    // The product's first image is its primary unless it says otherwise.
    const primary = body.primary || (body.kind === 'image' && (await k.primaryImageOf(tx, productId)) === null)
    const image = (await k.insertImage(tx, who.tenantId, { ...body, productId, primary }))!
    await audit(tx, who, 'product.image_added', 'product', productId, { imageId: image.id, kind: image.kind, primary: image.isPrimary })
    return image
  })

export const makePrimaryImage = (sql: Sql, who: Actor, productId: string, imageId: string) =>
  withTenant(sql, who.tenantId, async (tx) => {
    if (!(await k.findProduct(tx, productId, { lock: true }))) throw missing('product', productId)
    const image = await k.findImage(tx, productId, imageId)
    if (!image) throw missing('image', imageId)
    if (image.kind !== 'image') throw new AppError('CONFLICT', 'a background version cannot be the primary image')
    const updated = (await k.makePrimaryImage(tx, productId, imageId))!
    await audit(tx, who, 'product.image_primary', 'product', productId, { imageId })
    return updated
  })

export const deleteProductImage = (sql: Sql, who: Actor, productId: string, imageId: string) =>
  withTenant(sql, who.tenantId, async (tx) => {
    if (!(await k.findProduct(tx, productId, { lock: true }))) throw missing('product', productId)
    if ((await k.deleteImage(tx, productId, imageId)) === 0) throw missing('image', imageId)
    await audit(tx, who, 'product.image_deleted', 'product', productId, { imageId })
  })

// ---------------------------------------------------------------------------------------------------------------
// Creatives: every save is a new version, kept in creative_versions.

export const createCreative = (sql: Sql, who: Actor, body: CreateCreativeBody) =>
  withTenant(sql, who.tenantId, async (tx) => {
    if (body.campaignId && !(await k.campaignExists(tx, body.campaignId))) throw missing('campaign', body.campaignId)
    const c = await k.insertCreative(tx, who.tenantId, body)
    await k.insertCreativeVersion(tx, who.tenantId, c, who.actor)
    await audit(tx, who, 'creative.created', 'creative', c.id, { version: 1 })
    return c
  })

export const getCreative = (sql: Sql, tenantId: string, id: string) =>
  withTenant(sql, tenantId, async (tx) => {
    const c = await k.findCreative(tx, id)
    return c ? { ...c, assets: await k.listAssets(tx, id) } : null
  })

export const listCreatives = (sql: Sql, tenantId: string, query: { campaignId?: string; limit: number }) =>
  withTenant(sql, tenantId, async (tx) => ({ data: await k.listCreatives(tx, query.campaignId, query.limit) }))

export const updateCreative = (sql: Sql, who: Actor, id: string, body: PatchCreativeBody, expected?: number) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const c = await k.findCreative(tx, id, true)
    if (!c) throw missing('creative', id)
    assertVersion('creative', id, c.version, expected)
    const { version: _v, ...change } = body
    if (change.campaignId && !(await k.campaignExists(tx, change.campaignId))) throw missing('campaign', change.campaignId)
    const updated = await k.updateCreative(tx, id, change)
    await k.insertCreativeVersion(tx, who.tenantId, updated, who.actor)
    await audit(tx, who, 'creative.updated', 'creative', id, { version: updated.version, fields: Object.keys(change) })
    return updated
  })

export const deleteCreative = (sql: Sql, who: Actor, id: string) =>
  withTenant(sql, who.tenantId, async (tx) => {
    if (!(await k.findCreative(tx, id, true))) throw missing('creative', id)
    await k.updateCreative(tx, id, { deletedAt: 'now' })
    await audit(tx, who, 'creative.deleted', 'creative', id)
  })

export const listCreativeVersions = (sql: Sql, tenantId: string, id: string) =>
  withTenant(sql, tenantId, async (tx) => {
    if (!(await k.findCreative(tx, id))) throw missing('creative', id)
    return k.listCreativeVersions(tx, id)
  })

export const addAsset = (sql: Sql, who: Actor, creativeId: string, body: AddAssetBody) =>
  withTenant(sql, who.tenantId, async (tx) => {
    if (!(await k.findCreative(tx, creativeId, true))) throw missing('creative', creativeId)
    const a = await k.insertAsset(tx, who.tenantId, creativeId, body)
    await audit(tx, who, 'creative.asset_added', 'creative', creativeId, { assetId: a.id, kind: body.kind })
    return a
  })

export const deleteAsset = (sql: Sql, who: Actor, creativeId: string, assetId: string) =>
  withTenant(sql, who.tenantId, async (tx) => {
    if (!(await k.findCreative(tx, creativeId, true))) throw missing('creative', creativeId)
    if ((await k.deleteAsset(tx, creativeId, assetId)) === 0) throw missing('asset', assetId)
    await audit(tx, who, 'creative.asset_deleted', 'creative', creativeId, { assetId })
  })

// ---------------------------------------------------------------------------------------------------------------
// Platform integrations: tokens sealed with SECRETS_KEY exactly as the WhatsApp access tokens are
// (domains/whatsapp/numbers.ts), never returned, dropped on disconnect.

export const connectIntegration = (sql: Sql, secrets: SecretBox, who: Actor, body: ConnectIntegrationBody) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const g = await k.upsertIntegration(tx, who.tenantId, {
      platform: body.platform, accountId: body.accountId, label: body.label, scopes: body.scopes, tokenExpiresAt: body.tokenExpiresAt,
      accessTokenSealed: secrets.seal(body.accessToken), refreshTokenSealed: body.refreshToken ? secrets.seal(body.refreshToken) : null,
    })
    const { created, ...view } = g
    await audit(tx, who, created ? 'integration.connected' : 'integration.reconnected', 'platform_integration', g.id, { platform: g.platform, accountId: g.accountId })
    return { view, created }
  })

export const listIntegrations = (sql: Sql, tenantId: string) => withTenant(sql, tenantId, (tx) => k.listIntegrations(tx))
export const getIntegration = (sql: Sql, tenantId: string, id: string) => withTenant(sql, tenantId, (tx) => k.findIntegration(tx, id))

export const updateIntegration = (sql: Sql, secrets: SecretBox, who: Actor, id: string, body: PatchIntegrationBody) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const g = await k.updateIntegration(tx, id, {
      label: body.label, scopes: body.scopes, tokenExpiresAt: body.tokenExpiresAt, status: body.status, lastError: body.lastError,
      accessTokenSealed: body.accessToken ? secrets.seal(body.accessToken) : undefined,
      refreshTokenSealed: body.refreshToken === undefined ? undefined : body.refreshToken === null ? null : secrets.seal(body.refreshToken),
    })
    if (!g) {
      if (await k.findIntegration(tx, id)) throw new AppError('CONFLICT', `integration ${id} is disconnected: connect the account again (POST) to give it new tokens`)
      throw missing('integration', id)
    }
    const tokens = [body.accessToken && 'accessToken', body.refreshToken !== undefined && 'refreshToken'].filter(Boolean)
    await audit(tx, who, 'integration.updated', 'platform_integration', id, { fields: Object.keys(body).filter((f) => !f.endsWith('Token')), tokens })
    return g
  })

export const disconnectIntegration = (sql: Sql, who: Actor, id: string) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const g = await k.updateIntegration(tx, id, { disconnect: true })
    if (!g) throw missing('integration', id)
    await audit(tx, who, 'integration.disconnected', 'platform_integration', id, { platform: g.platform })
    return g
  })

/** The access token in clear, for code that calls the platform on the tenant's behalf (publishing, metrics sync). */
export const openAccessToken = (sql: Sql, secrets: SecretBox, tenantId: string, id: string) =>
  withTenant(sql, tenantId, async (tx) => {
    const sealed = await k.sealedAccessToken(tx, id)
    return sealed ? secrets.open(sealed) : null
  })

// ---------------------------------------------------------------------------------------------------------------
// Publications.

export const recordPublication = (sql: Sql, who: Actor, campaignId: string, platform: Platform, body: UpsertPublicationBody) =>
  withTenant(sql, who.tenantId, async (tx) => {
    if (!(await k.campaignExists(tx, campaignId))) throw missing('campaign', campaignId)
    if (body.integrationId && !(await k.integrationUsable(tx, body.integrationId, platform))) {
      throw new AppError('NOT_FOUND', `integration ${body.integrationId} not found (or not a connected ${platform} account)`)
    }
    const syncedAt = body.syncedAt ?? (body.metrics !== undefined ? new Date() : undefined)
    const p = await tx.savepoint((sp) => conflictOnUnique(() => k.upsertPublication(sp, who.tenantId, campaignId, platform, { ...body, syncedAt }),
      'publications_external_key', `${platform} id ${body.externalId} is already recorded for another campaign`, 'externalId'))
    await audit(tx, who, 'publication.recorded', 'campaign', campaignId, { platform, status: p.status, externalId: p.externalId })
    return p
  })

export const listPublications = (sql: Sql, tenantId: string, campaignId: string) =>
  withTenant(sql, tenantId, async (tx) => {
    if (!(await k.campaignExists(tx, campaignId))) throw missing('campaign', campaignId)
    return k.listPublications(tx, campaignId)
  })

// ---------------------------------------------------------------------------------------------------------------
// AI generation history.

export const recordAiGeneration = (sql: Sql, who: Actor, body: RecordAiGenerationBody) =>
  withTenant(sql, who.tenantId, async (tx) => {
    if (body.campaignId && !(await k.campaignExists(tx, body.campaignId))) throw missing('campaign', body.campaignId)
    if (body.creativeId && !(await k.creativeExists(tx, body.creativeId))) throw missing('creative', body.creativeId)
    return k.insertGeneration(tx, who.tenantId, { ...body, createdBy: who.actor })
  })

export const listAiGenerations = (sql: Sql, tenantId: string, query: { campaignId?: string; type?: string; limit: number }) =>
  withTenant(sql, tenantId, async (tx) => ({ data: await k.listGenerations(tx, query, query.limit), totals: await k.generationTotals(tx, query) }))
