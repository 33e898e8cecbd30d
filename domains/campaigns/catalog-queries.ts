import type { Tx } from '../../lib/db.js'
import type {
  AiGenerationView, AssetView, CreativeVersionView, CreativeView, IntegrationView, ProductImageView, ProductView, PublicationView, Utm,
} from './schemas.js'

/** The SQL of the campaign builder's catalog: products and images, creatives, integrations, publications, AI history. */

// ---------------------------------------------------------------------------------------------------------------
// Products.

const productColumns = (tx: Tx) => tx`p.id, p.name, p.sku, p.description, p.price::text as price, p.currency, p.url, p.utm, p.deleted_at, p.created_at, p.updated_at`

export interface ProductInsert { name: string; sku: string | null; description: string; price: string | null; currency: string | null; url: string | null; utm: Utm; legacyKey?: string | null }

export const insertProduct = (tx: Tx, tenantId: string, p: ProductInsert) =>
  tx<ProductView[]>`
    insert into campaigns.products as p (tenant_id, name, sku, description, price, currency, url, utm, legacy_key)
    values (${tenantId}, ${p.name}, ${p.sku}, ${p.description}, ${p.price}, ${p.currency}, ${p.url}, ${tx.json(p.utm as never)}, ${p.legacyKey ?? null})
    returning ${productColumns(tx)}`.then((r) => r[0]!)

export const findProduct = (tx: Tx, id: string, opts: { lock?: boolean; includeDeleted?: boolean } = {}) =>
  tx<ProductView[]>`
    select ${productColumns(tx)} from campaigns.products p
     where p.id = ${id} ${opts.includeDeleted ? tx`` : tx`and p.deleted_at is null`} ${opts.lock ? tx`for update` : tx``}`.then((r) => r[0] ?? null)

export const listProducts = (tx: Tx, deleted: boolean, limit: number, after: { at: string; id: string } | null) =>
  tx<(ProductView & { cursorAt: string })[]>`
    select ${productColumns(tx)}, p.created_at::text as cursor_at from campaigns.products p
     where ${deleted ? tx`p.deleted_at is not null` : tx`p.deleted_at is null`}
       and ${after ? tx`(p.created_at, p.id) < (${after.at}::timestamptz, ${after.id}::uuid)` : tx`true`}
     order by p.created_at desc, p.id desc limit ${limit + 1}`

export const updateProduct = (tx: Tx, id: string, p: Partial<ProductInsert> & { deletedAt?: 'now' | null }) => {
  const sets = [
    p.name !== undefined && tx`name = ${p.name}`,
    p.sku !== undefined && tx`sku = ${p.sku}`,
    p.description !== undefined && tx`description = ${p.description}`,
    p.price !== undefined && tx`price = ${p.price}`,
    p.currency !== undefined && tx`currency = ${p.currency}`,
    p.url !== undefined && tx`url = ${p.url}`,
    p.utm !== undefined && tx`utm = ${tx.json(p.utm as never)}`,
    p.deletedAt !== undefined && (p.deletedAt === null ? tx`deleted_at = null` : tx`deleted_at = now()`),
  ].filter((s) => s !== false)
  return tx<ProductView[]>`
    update campaigns.products p set ${sets.map((s) => tx`${s}, `)}updated_at = now() where p.id = ${id} returning ${productColumns(tx)}`.then((r) => r[0]!)
}

const imageColumns = (tx: Tx) => tx`i.id, i.product_id, i.kind, i.parent_image_id, i.url, i.alt, i.is_primary, i.position, i.width, i.height, i.created_at`

export interface ImageInsert {
  productId: string; kind: 'image' | 'background'; parentImageId: string | null; url: string; alt: string; primary: boolean; position: number
  width: number | null; height: number | null; legacyKey?: string | null
}

/** Adds an image; a new primary takes over from the old one in the same statement's transaction. Null if the legacy key was imported. */
export async function insertImage(tx: Tx, tenantId: string, i: ImageInsert): Promise<ProductImageView | null> {
  if (i.primary) await tx`update campaigns.product_images set is_primary = false where product_id = ${i.productId} and is_primary`
  return tx<ProductImageView[]>`
    insert into campaigns.product_images as i (tenant_id, product_id, kind, parent_image_id, url, alt, is_primary, position, width, height, legacy_key)
    values (${tenantId}, ${i.productId}, ${i.kind}, ${i.parentImageId}, ${i.url}, ${i.alt}, ${i.primary}, ${i.position}, ${i.width}, ${i.height}, ${i.legacyKey ?? null})
    on conflict (tenant_id, legacy_key) where legacy_key is not null do nothing
    returning ${imageColumns(tx)}`.then((r) => r[0] ?? null)
}

export const listImages = (tx: Tx, productIds: string[]) =>
  tx<ProductImageView[]>`select ${imageColumns(tx)} from campaigns.product_images i where i.product_id = any(${productIds}::uuid[]) order by i.product_id, i.is_primary desc, i.position, i.created_at`

export const findImage = (tx: Tx, productId: string, id: string) =>
  tx<ProductImageView[]>`select ${imageColumns(tx)} from campaigns.product_images i where i.product_id = ${productId} and i.id = ${id}`.then((r) => r[0] ?? null)

export async function makePrimaryImage(tx: Tx, productId: string, id: string): Promise<ProductImageView | null> {
  await tx`update campaigns.product_images set is_primary = false where product_id = ${productId} and is_primary and id <> ${id}`
  return tx<ProductImageView[]>`
    update campaigns.product_images i set is_primary = true where i.product_id = ${productId} and i.id = ${id} and i.kind = 'image'
    returning ${imageColumns(tx)}`.then((r) => r[0] ?? null)
}

/** Deletes an image and its background versions (cascade). */
export const deleteImage = (tx: Tx, productId: string, id: string) =>
  tx`delete from campaigns.product_images where product_id = ${productId} and id = ${id}`.then((r) => r.count)

export const imageIdsByLegacyKey = (tx: Tx, keys: string[]) =>
  tx<{ id: string; legacyKey: string; productId: string }[]>`select id, legacy_key, product_id from campaigns.product_images where legacy_key = any(${keys}::text[])`

export const primaryImageOf = (tx: Tx, productId: string) =>
  tx<{ id: string }[]>`select id from campaigns.product_images where product_id = ${productId} and is_primary`.then((r) => r[0]?.id ?? null)

// ---------------------------------------------------------------------------------------------------------------
// Creatives: the row holds the current version; each version is also kept in creative_versions.

const creativeColumns = (tx: Tx) => tx`k.id, k.campaign_id, k.title, k.format, k.width, k.height, k.elements, k.version, k.deleted_at, k.created_at, k.updated_at`

export interface CreativeFields { campaignId: string | null; title: string; format: string; width: number; height: number; elements: unknown[] }

export const insertCreative = (tx: Tx, tenantId: string, c: CreativeFields) =>
  tx<CreativeView[]>`
    insert into campaigns.creatives as k (tenant_id, campaign_id, title, format, width, height, elements)
    values (${tenantId}, ${c.campaignId}, ${c.title}, ${c.format}, ${c.width}, ${c.height}, ${tx.json(c.elements as never)})
    returning ${creativeColumns(tx)}`.then((r) => r[0]!)

export const findCreative = (tx: Tx, id: string, lock = false) =>
  tx<CreativeView[]>`select ${creativeColumns(tx)} from campaigns.creatives k where k.id = ${id} and k.deleted_at is null ${lock ? tx`for update` : tx``}`.then((r) => r[0] ?? null)

export const listCreatives = (tx: Tx, campaignId: string | undefined, limit: number) =>
  tx<CreativeView[]>`
    select ${creativeColumns(tx)} from campaigns.creatives k
     where k.deleted_at is null and ${campaignId ? tx`k.campaign_id = ${campaignId}` : tx`true`}
     order by k.created_at desc, k.id desc limit ${limit}`

export const updateCreative = (tx: Tx, id: string, c: Partial<CreativeFields> & { deletedAt?: 'now' }) => {
  const sets = [
    c.campaignId !== undefined && tx`campaign_id = ${c.campaignId}`,
    c.title !== undefined && tx`title = ${c.title}`,
    c.format !== undefined && tx`format = ${c.format}`,
    c.width !== undefined && tx`width = ${c.width}`,
    c.height !== undefined && tx`height = ${c.height}`,
    c.elements !== undefined && tx`elements = ${tx.json(c.elements as never)}`,
    c.deletedAt !== undefined && tx`deleted_at = now()`,
  ].filter((s) => s !== false)
  return tx<CreativeView[]>`
    update campaigns.creatives k set ${sets.map((s) => tx`${s}, `)}${c.deletedAt ? tx`` : tx`version = version + 1, `}updated_at = now()
     where k.id = ${id} returning ${creativeColumns(tx)}`.then((r) => r[0]!)
}

export const insertCreativeVersion = (tx: Tx, tenantId: string, c: CreativeView, createdBy: string) =>
  tx`
    insert into campaigns.creative_versions (tenant_id, creative_id, version, title, format, width, height, elements, created_by)
    values (${tenantId}, ${c.id}, ${c.version}, ${c.title}, ${c.format}, ${c.width}, ${c.height}, ${tx.json(c.elements as never)}, ${createdBy})`

export const listCreativeVersions = (tx: Tx, creativeId: string) =>
  tx<CreativeVersionView[]>`select version, title, format, width, height, elements, created_by, created_at from campaigns.creative_versions where creative_id = ${creativeId} order by version desc`

export const insertAsset = (tx: Tx, tenantId: string, creativeId: string, a: { kind: string; url: string; mimeType: string | null; bytes: number | null; width: number | null; height: number | null; checksum: string | null }) =>
  tx<AssetView[]>`
    insert into campaigns.creative_assets (tenant_id, creative_id, kind, url, mime_type, bytes, width, height, checksum)
    values (${tenantId}, ${creativeId}, ${a.kind}, ${a.url}, ${a.mimeType}, ${a.bytes}, ${a.width}, ${a.height}, ${a.checksum})
    returning id, creative_id, kind, url, mime_type, bytes, width, height, checksum, created_at`.then((r) => r[0]!)

export const listAssets = (tx: Tx, creativeId: string) =>
  tx<AssetView[]>`select id, creative_id, kind, url, mime_type, bytes, width, height, checksum, created_at from campaigns.creative_assets where creative_id = ${creativeId} order by created_at, id`

export const deleteAsset = (tx: Tx, creativeId: string, id: string) =>
  tx`delete from campaigns.creative_assets where creative_id = ${creativeId} and id = ${id}`.then((r) => r.count)

// ---------------------------------------------------------------------------------------------------------------
// Platform integrations: tokens go in sealed and never come out of these queries.

const integrationColumns = (tx: Tx) => tx`
  g.id, g.platform, g.account_id, g.label, g.access_token_sealed is not null as has_access_token, g.refresh_token_sealed is not null as has_refresh_token,
  g.token_expires_at, g.scopes, g.status, g.last_error, g.created_at, g.updated_at`

export interface IntegrationInsert {
  platform: string; accountId: string; label: string; accessTokenSealed: string; refreshTokenSealed: string | null; tokenExpiresAt: Date | null; scopes: string[]
}

/** Connecting an account again (a disconnected one, or a token refresh by reconnecting) reuses its row. */
export const upsertIntegration = (tx: Tx, tenantId: string, g: IntegrationInsert) =>
  tx<IntegrationView[]>`
    insert into campaigns.platform_integrations as g (tenant_id, platform, account_id, label, access_token_sealed, refresh_token_sealed, token_expires_at, scopes)
    values (${tenantId}, ${g.platform}, ${g.accountId}, ${g.label}, ${g.accessTokenSealed}, ${g.refreshTokenSealed}, ${g.tokenExpiresAt}, ${g.scopes}::text[])
    on conflict (tenant_id, platform, account_id) do update
       set label = excluded.label, access_token_sealed = excluded.access_token_sealed, refresh_token_sealed = excluded.refresh_token_sealed,
           token_expires_at = excluded.token_expires_at, scopes = excluded.scopes, status = 'active', last_error = null, updated_at = now()
    returning ${integrationColumns(tx)}, (xmax = 0) as created`.then((r) => r[0]! as IntegrationView & { created: boolean })

export const findIntegration = (tx: Tx, id: string) =>
  tx<IntegrationView[]>`select ${integrationColumns(tx)} from campaigns.platform_integrations g where g.id = ${id}`.then((r) => r[0] ?? null)

export const listIntegrations = (tx: Tx) =>
  tx<IntegrationView[]>`select ${integrationColumns(tx)} from campaigns.platform_integrations g order by g.platform, g.created_at`

export const updateIntegration = (tx: Tx, id: string, p: {
  label?: string; accessTokenSealed?: string; refreshTokenSealed?: string | null; tokenExpiresAt?: Date | null; scopes?: string[]
  status?: string; lastError?: string | null; disconnect?: true
}) => {
  const sets = [
    p.label !== undefined && tx`label = ${p.label}`,
    p.accessTokenSealed !== undefined && tx`access_token_sealed = ${p.accessTokenSealed}`,
    p.refreshTokenSealed !== undefined && tx`refresh_token_sealed = ${p.refreshTokenSealed}`,
    p.tokenExpiresAt !== undefined && tx`token_expires_at = ${p.tokenExpiresAt}`,
    p.scopes !== undefined && tx`scopes = ${p.scopes}::text[]`,
    p.status !== undefined && tx`status = ${p.status}`,
    p.lastError !== undefined && tx`last_error = ${p.lastError}`,
    p.disconnect === true && tx`status = 'disconnected', access_token_sealed = null, refresh_token_sealed = null, token_expires_at = null`,
  ].filter((s) => s !== false)
  return tx<IntegrationView[]>`
    update campaigns.platform_integrations g set ${sets.map((s) => tx`${s}, `)}updated_at = now()
     where g.id = ${id} and ${p.disconnect ? tx`true` : tx`g.status <> 'disconnected'`} returning ${integrationColumns(tx)}`.then((r) => r[0] ?? null)
}

/** The sealed access token, for the code that calls the platform (never for a response). */
export const sealedAccessToken = (tx: Tx, id: string) =>
  tx<{ sealed: string | null }[]>`select access_token_sealed as sealed from campaigns.platform_integrations where id = ${id}`.then((r) => r[0]?.sealed ?? null)

// ---------------------------------------------------------------------------------------------------------------
// Publications.

const publicationColumns = (tx: Tx) => tx`u.id, u.campaign_id, u.platform, u.integration_id, u.external_id, u.status, u.metrics, u.last_synced_at, u.last_error, u.created_at, u.updated_at`

export const upsertPublication = (tx: Tx, tenantId: string, campaignId: string, platform: string, p: {
  integrationId?: string | null; externalId?: string | null; status: string; metrics?: unknown; syncedAt?: Date | null; lastError?: string | null
}) =>
  tx<PublicationView[]>`
    insert into campaigns.publications as u (tenant_id, campaign_id, platform, integration_id, external_id, status, metrics, last_synced_at, last_error)
    values (${tenantId}, ${campaignId}, ${platform}, ${p.integrationId ?? null}, ${p.externalId ?? null}, ${p.status},
            ${tx.json((p.metrics ?? {}) as never)}, ${p.syncedAt ?? null}, ${p.lastError ?? null})
    on conflict (tenant_id, campaign_id, platform) do update
       set integration_id = ${p.integrationId === undefined ? tx`u.integration_id` : tx`excluded.integration_id`},
           external_id = ${p.externalId === undefined ? tx`u.external_id` : tx`excluded.external_id`},
           status = excluded.status,
           metrics = ${p.metrics === undefined ? tx`u.metrics` : tx`excluded.metrics`},
           last_synced_at = ${p.syncedAt === undefined ? tx`u.last_synced_at` : tx`excluded.last_synced_at`},
           last_error = ${p.lastError === undefined ? tx`u.last_error` : tx`excluded.last_error`},
           updated_at = now()
    returning ${publicationColumns(tx)}`.then((r) => r[0]!)

export const listPublications = (tx: Tx, campaignId: string) =>
  tx<PublicationView[]>`select ${publicationColumns(tx)} from campaigns.publications u where u.campaign_id = ${campaignId} order by u.platform`

export const integrationUsable = (tx: Tx, id: string, platform: string) =>
  tx`select 1 from campaigns.platform_integrations where id = ${id} and platform = ${platform} and status <> 'disconnected'`.then((r) => r.length > 0)

// ---------------------------------------------------------------------------------------------------------------
// AI generation history.

const generationColumns = (tx: Tx) => tx`
  a.id, a.type, a.prompt, a.service, a.model, a.status, a.output, a.error, a.cost::text as cost, a.cost_currency, a.input_tokens, a.output_tokens,
  a.started_at, a.completed_at, a.duration_ms, a.campaign_id, a.creative_id, a.created_by, a.created_at`

export const insertGeneration = (tx: Tx, tenantId: string, g: {
  type: string; prompt: string; service: string; model: string | null; status: string; output: unknown; error: string | null; cost: string | null
  costCurrency: string; inputTokens: number | null; outputTokens: number | null; startedAt: Date; completedAt: Date; campaignId: string | null
  creativeId: string | null; createdBy: string
}) =>
  tx<AiGenerationView[]>`
    insert into campaigns.ai_generations as a (tenant_id, type, prompt, service, model, status, output, error, cost, cost_currency, input_tokens,
                                               output_tokens, started_at, completed_at, campaign_id, creative_id, created_by)
    values (${tenantId}, ${g.type}, ${g.prompt}, ${g.service}, ${g.model}, ${g.status}, ${g.output === null ? null : tx.json(g.output as never)}, ${g.error},
            ${g.cost}, ${g.costCurrency}, ${g.inputTokens}, ${g.outputTokens}, ${g.startedAt}, ${g.completedAt}, ${g.campaignId}, ${g.creativeId}, ${g.createdBy})
    returning ${generationColumns(tx)}`.then((r) => r[0]!)

export const listGenerations = (tx: Tx, f: { campaignId?: string; type?: string }, limit: number) =>
  tx<AiGenerationView[]>`
    select ${generationColumns(tx)} from campaigns.ai_generations a
     where ${f.campaignId ? tx`a.campaign_id = ${f.campaignId}` : tx`true`} and ${f.type ? tx`a.type = ${f.type}` : tx`true`}
     order by a.started_at desc, a.id desc limit ${limit}`

/** Totals per cost currency of the same filter: what the history cost (exact sums in SQL). */
export const generationTotals = (tx: Tx, f: { campaignId?: string; type?: string }) =>
  tx<{ costCurrency: string; count: number; cost: string; durationMs: number }[]>`
    select a.cost_currency, count(*)::int as count, coalesce(sum(a.cost), 0)::text as cost, coalesce(sum(a.duration_ms), 0)::float8 as duration_ms
      from campaigns.ai_generations a
     where ${f.campaignId ? tx`a.campaign_id = ${f.campaignId}` : tx`true`} and ${f.type ? tx`a.type = ${f.type}` : tx`true`}
     group by 1 order by 1`

export const creativeExists = (tx: Tx, id: string) => tx`select 1 from campaigns.creatives where id = ${id}`.then((r) => r.length > 0)
export const campaignExists = (tx: Tx, id: string) => tx`select 1 from campaigns.campaigns where id = ${id} and deleted_at is null`.then((r) => r.length > 0)
