import { createHash } from 'node:crypto'
import { z } from 'zod'
import { type Sql, type Tx, withTenant } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import * as k from './catalog-queries.js'
import * as q from './queries.js'
import { CampaignConfig, CampaignStatus, CampaignType, Currency, DRAFT_MAX_BYTES, DRAFT_TTL_DAYS, Money, Platform, Utm } from './schemas.js'
import { insertAuditEntry } from '../tenancy/queries.js'
import { type Actor, auditCampaign } from './service.js'

/**
 * POST /v1/campaigns/import/local-storage: the old browser builder's localStorage, dumped as `{ key: value }` (values
 * as the browser stored them, JSON text, or already parsed). Known keys:
 *   campaigns, saved_campaigns     arrays of campaigns ({ id, name, type, status, budget, currency, startDate, endDate,
 *                                  productId, audience, platforms, creative, publish, utmCampaign })
 *   campaign_minimal_<id>          the trimmed copy the builder kept when the quota was hit (used when the full one is absent)
 *   campaign_draft_<id>            a campaign's auto-saved step data ({ step, data, savedAt })
 *   products                       an array of products ({ id, name, sku, price, currency, url, utm, images: [{ url, primary }] })
 *   backgrounds                    an array of background versions of product images ({ id, productId, url, sourceImageUrl })
 *   sample_data                    the builder's demo data: never imported
 * A dump whose structure is wrong (a known key that is not JSON, not an array, an item without an id) is refused
 * whole with a 400 naming the key. Within a well-formed dump, each item is imported, skipped (imported before, a
 * duplicate, demo data, an unknown key) or refused (its values break a rule: an unknown currency, a negative
 * budget, a product that is not there), each with its reason; one refused item never stops its neighbours. Every
 * imported key is recorded in campaigns.legacy_imports, so importing the same dump again changes nothing.
 */

export interface ImportEntry {
  key: string
  /** The item's id in the old builder (array items), if any. */
  legacyId?: string
  outcome: 'imported' | 'skipped' | 'refused'
  reason?: string
  /** What it became (imported), or the row it was imported as before (skipped). */
  target?: { type: 'campaign' | 'product' | 'product_image' | 'draft'; id: string }
}
export interface ImportReport {
  summary: { imported: number; skipped: number; refused: number }
  byKey: Record<string, { imported: number; skipped: number; refused: number }>
  entries: ImportEntry[]
}

const DRAFT_KEY = /^campaign_draft_(.{1,200})$/
const MINIMAL_KEY = /^campaign_minimal_(.{1,200})$/
const LIST_KEYS = ['campaigns', 'saved_campaigns', 'products', 'backgrounds'] as const

const LegacyId = z.union([z.string().trim().min(1).max(200), z.number().int().safe().transform(String)])
const Item = z.looseObject({ id: LegacyId })
/** The structure the dump must have; its values are judged item by item below. */
const ListShape = z.array(Item).max(10_000)
const ObjectShape = z.record(z.string(), z.unknown())

export const ImportBody = z.record(z.string().max(300), z.unknown()).refine((o) => Object.keys(o).length <= 5000, 'at most 5000 keys')

/** A localStorage value as stored (JSON text) or already parsed. */
function parseValue(key: string, value: unknown): unknown {
  if (typeof value !== 'string') return value
  try {
    return JSON.parse(value)
  } catch {
    throw shapeError(key, 'is not JSON (localStorage values are JSON text)')
  }
}

const shapeError = (key: string, message: string, path: (string | number)[] = []) =>
  new AppError('BAD_REQUEST', `import refused: ${[key, ...path].join('.')} ${message}`, { details: [{ in: 'body', path: [key, ...path].join('.'), message }] })

function parseShape<T>(key: string, schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value)
  if (r.success) return r.data
  const issue = r.error.issues[0]!
  throw shapeError(key, issue.message, issue.path as (string | number)[])
}

// ---------------------------------------------------------------------------------------------------------------
// From the old builder's vocabulary to ours.

const STATUS_ALIASES: Record<string, z.infer<typeof CampaignStatus>> = {
  draft: 'draft', scheduled: 'scheduled', active: 'active', running: 'active', published: 'active', live: 'active', paused: 'paused',
  completed: 'completed', ended: 'completed', finished: 'completed', archived: 'archived',
}
const TYPE_ALIASES: Record<string, z.infer<typeof CampaignType>> = {
  lead_generation: 'lead_generation', leads: 'lead_generation', lead: 'lead_generation', 'lead-generation': 'lead_generation', leadgen: 'lead_generation',
  sales: 'sales', conversions: 'sales', conversion: 'sales', awareness: 'awareness', brand: 'awareness', reach: 'awareness', traffic: 'traffic',
  engagement: 'engagement', app_installs: 'app_installs', whatsapp: 'whatsapp', messages: 'whatsapp', messaging: 'whatsapp',
}
const PLATFORM_ALIASES: Record<string, z.infer<typeof Platform>> = {
  meta: 'meta', facebook: 'meta', instagram: 'meta', fb: 'meta', ig: 'meta', google: 'google', google_ads: 'google', adwords: 'google', youtube: 'youtube',
  tiktok: 'tiktok', linkedin: 'linkedin', x: 'x', twitter: 'x', pinterest: 'pinterest', snapchat: 'snapchat', whatsapp: 'whatsapp',
}

const str = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : typeof v === 'number' ? String(v) : undefined)
const obj = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined)

/** A legacy date: ISO text, a date-only string, or epoch milliseconds. */
function legacyDate(v: unknown): Date | null | 'invalid' {
  if (v === undefined || v === null || v === '') return null
  const d = typeof v === 'number' ? new Date(v) : typeof v === 'string' ? new Date(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v) : null
  return d && !Number.isNaN(d.getTime()) ? d : 'invalid'
}

class Refused extends Error {}
const refuse = (reason: string): never => { throw new Refused(reason) }

function money(field: string, v: unknown): string | null {
  if (v === undefined || v === null || v === '') return null
  const r = Money.safeParse(typeof v === 'string' ? v.replace(/,/g, '') : v)
  return r.success ? r.data : refuse(`${field} ${JSON.stringify(v)}: ${r.error.issues[0]!.message}`)
}
function currency(v: unknown): string | null {
  if (v === undefined || v === null || v === '') return null
  const r = Currency.safeParse(v)
  return r.success ? r.data : refuse(`currency ${JSON.stringify(v)} is not an ISO 4217 code`)
}

/** The legacy campaign's audience / platforms / creative / publish, in our config's shape, validated. */
function legacyConfig(c: Record<string, unknown>): z.infer<typeof CampaignConfig> {
  const a = obj(c.audience)
  const age = obj(a?.age)
  const list = (v: unknown) => (Array.isArray(v) ? v.map(str).filter((x): x is string => !!x) : typeof v === 'string' ? [v] : undefined)
  const platformsIn = Array.isArray(c.platforms) ? c.platforms : []
  const platforms = platformsIn.map((p) => {
    const name = str(typeof p === 'string' ? p : obj(p)?.platform ?? obj(p)?.name)?.toLowerCase()
    const platform = name ? PLATFORM_ALIASES[name] : undefined
    if (!platform) refuse(`platform ${JSON.stringify(name ?? p)} is not one we publish to (${Platform.options.join(', ')})`)
    const o = obj(p)
    return { platform: platform!, ...(o && list(o.placements) ? { placements: list(o.placements) } : {}), ...(o && str(o.objective) ? { objective: str(o.objective) } : {}) }
  })
  // facebook and instagram both become meta: one entry.
  const unique = platforms.filter((p, i) => platforms.findIndex((x) => x.platform === p.platform) === i)
  const creative = obj(c.creative)
  const publish = obj(c.publish)
  const raw = {
    ...(a ? { audience: {
      ...(list(a.locations ?? a.location) ? { locations: list(a.locations ?? a.location) } : {}),
      ...(typeof (a.ageMin ?? age?.min) === 'number' ? { ageMin: a.ageMin ?? age?.min } : {}),
      ...(typeof (a.ageMax ?? age?.max) === 'number' ? { ageMax: a.ageMax ?? age?.max } : {}),
      ...(list(a.genders ?? a.gender) ? { genders: list(a.genders ?? a.gender)!.map((g) => g.toLowerCase()) } : {}),
      ...(list(a.interests) ? { interests: list(a.interests) } : {}),
      ...(list(a.languages) ? { languages: list(a.languages) } : {}),
      ...(str(a.description) ? { description: str(a.description) } : {}),
    } } : {}),
    ...(unique.length ? { platforms: unique } : {}),
    ...(creative ? { creative: {
      ...(str(creative.headline) ? { headline: str(creative.headline) } : {}),
      ...(str(creative.primaryText ?? creative.text ?? creative.body) ? { primaryText: str(creative.primaryText ?? creative.text ?? creative.body) } : {}),
      ...(str(creative.description) ? { description: str(creative.description) } : {}),
      ...(str(creative.callToAction ?? creative.cta) ? { callToAction: str(creative.callToAction ?? creative.cta) } : {}),
      ...(str(creative.landingUrl ?? creative.url) ? { landingUrl: str(creative.landingUrl ?? creative.url) } : {}),
    } } : {}),
    ...(publish ? { publish: {
      mode: str(publish.mode) ?? (publish.publishAt || publish.scheduledAt ? 'scheduled' : 'manual'),
      ...(publish.publishAt || publish.scheduledAt ? { publishAt: legacyIso(publish.publishAt ?? publish.scheduledAt) } : {}),
      ...(str(publish.timezone) ? { timezone: str(publish.timezone) } : {}),
    } } : {}),
  }
  const r = CampaignConfig.safeParse(raw)
  return r.success ? r.data : refuse(`configuration: ${r.error.issues.map((i) => `${i.path.join('.') || 'config'} ${i.message}`).join('; ')}`)
}
const legacyIso = (v: unknown) => { const d = legacyDate(v); return d instanceof Date ? d.toISOString() : String(v) }

// ---------------------------------------------------------------------------------------------------------------

interface Ctx { tx: Tx; who: Actor; done: Map<string, { targetType: string; targetId: string; importedAt: Date }>; entries: ImportEntry[] }

const hashOf = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16)

/** Runs one item's import in a savepoint: its rows and its legacy key commit together, or not at all. */
async function importItem(ctx: Ctx, entry: Omit<ImportEntry, 'outcome'>, legacyKey: string, targetType: 'campaign' | 'product' | 'product_image' | 'draft',
  make: (tx: Tx) => Promise<string>): Promise<string | null> {
  const before = ctx.done.get(legacyKey)
  if (before) {
    ctx.entries.push({ ...entry, outcome: 'skipped', reason: `imported before (${before.importedAt.toISOString()})`, target: { type: before.targetType as never, id: before.targetId } })
    return before.targetId
  }
  try {
    const id = await ctx.tx.savepoint(async (sp) => {
      const id = await make(sp)
      if (!(await q.claimLegacyKey(sp, ctx.who.tenantId, { legacyKey, targetType, targetId: id, importedBy: ctx.who.actor }))) throw new Refused('imported concurrently')
      return id
    })
    ctx.done.set(legacyKey, { targetType, targetId: id, importedAt: new Date() })
    ctx.entries.push({ ...entry, outcome: 'imported', target: { type: targetType, id } })
    return id
  } catch (err) {
    const pg = err as { code?: string; constraint_name?: string }
    const reason = err instanceof Refused ? err.message
      : pg.code === '23505' && pg.constraint_name === 'campaigns_utm_campaign_key' ? 'its utm_campaign is already used by another campaign'
        : pg.code === '23505' && pg.constraint_name === 'products_sku_key' ? 'its SKU is already used by another product'
          : pg.code === '23505' ? 'a row with the same unique value exists'
            : pg.code?.startsWith('22') || pg.code?.startsWith('23') ? 'a value the database refused'
              : null
    if (reason === null) throw err
    ctx.entries.push({ ...entry, outcome: 'refused', reason })
    return null
  }
}

async function importProduct(ctx: Ctx, key: string, p: Record<string, unknown> & { id: string }): Promise<void> {
  await importItem(ctx, { key, legacyId: p.id }, `product:${p.id}`, 'product', async (tx) => {
    const name = str(p.name ?? p.title) ?? refuse('a product needs a name')
    const price = money('price', p.price)
    const cur = currency(p.currency) ?? (price !== null ? refuse('a price needs its currency') : null)
    const utmIn = obj(p.utm) ?? {
      source: p.utmSource ?? p.utm_source, medium: p.utmMedium ?? p.utm_medium, campaign: p.utmCampaign ?? p.utm_campaign,
      term: p.utmTerm ?? p.utm_term, content: p.utmContent ?? p.utm_content,
    }
    const utm = Utm.safeParse(Object.fromEntries(Object.entries(utmIn).filter(([, v]) => v !== undefined && v !== null && v !== '')))
    if (!utm.success) refuse(`utm: ${utm.error.issues[0]!.message}`)
    const url = str(p.url ?? p.link)
    if (url && !z.url({ protocol: /^https?$/ }).safeParse(url).success) refuse(`url ${JSON.stringify(url)} is not an http(s) URL`)
    const product = await k.insertProduct(tx, ctx.who.tenantId, {
      name: name.slice(0, 200), sku: str(p.sku)?.slice(0, 64) ?? null, description: (str(p.description) ?? '').slice(0, 5000), price, currency: cur,
      url: url ?? null, utm: utm.data!, legacyKey: `product:${p.id}`,
    })
    // Images come with their product: imported once, with it.
    const images = Array.isArray(p.images) ? p.images : str(p.image ?? p.imageUrl) ? [{ url: str(p.image ?? p.imageUrl), primary: true }] : []
    const marked = images.findIndex((x) => obj(x)?.primary === true || obj(x)?.isPrimary === true)
    for (const [i, raw] of images.entries()) {
      const im = typeof raw === 'string' ? { url: raw } : obj(raw) ?? {}
      const imageUrl = str(im.url ?? im.src)
      if (!imageUrl || !z.url({ protocol: /^https?$/ }).safeParse(imageUrl).success) refuse(`images[${i}] has no http(s) url`)
      await k.insertImage(tx, ctx.who.tenantId, {
        productId: product.id, kind: 'image', parentImageId: null, url: imageUrl!, alt: (str(im.alt) ?? '').slice(0, 500),
        primary: i === (marked === -1 ? 0 : marked), position: i, width: null, height: null, legacyKey: `product:${p.id}:image:${hashOf(imageUrl!)}`,
      })
    }
    return product.id
  })
}

async function importBackground(ctx: Ctx, key: string, b: Record<string, unknown> & { id: string }): Promise<void> {
  await importItem(ctx, { key, legacyId: b.id }, `background:${b.id}`, 'product_image', async (tx) => {
    const productLegacy = str(b.productId ?? b.product_id) ?? refuse('a background needs the productId it belongs to')
    const product = ctx.done.get(`product:${productLegacy}`) ?? refuse(`product ${productLegacy} is neither in this dump nor imported before`)
    const url = str(b.url ?? b.imageUrl ?? b.src ?? b.dataUrl)
    if (!url || !z.url({ protocol: /^https?$/ }).safeParse(url).success) refuse('a background needs an http(s) url (inline data URLs are not imported)')
    const source = str(b.sourceImageUrl ?? b.originalUrl)
    const parentKey = source ? `product:${productLegacy}:image:${hashOf(source)}` : null
    const parent = parentKey ? (await k.imageIdsByLegacyKey(tx, [parentKey]))[0]?.id ?? null : await k.primaryImageOf(tx, product.targetId)
    const image = await k.insertImage(tx, ctx.who.tenantId, {
      productId: product.targetId, kind: 'background', parentImageId: parent, url: url!, alt: (str(b.name ?? b.alt) ?? '').slice(0, 500), primary: false,
      position: 0, width: null, height: null, legacyKey: `background:${b.id}`,
    })
    return image!.id
  })
}

async function importCampaign(ctx: Ctx, key: string, c: Record<string, unknown> & { id: string }, minimal = false): Promise<void> {
  await importItem(ctx, { key, legacyId: c.id }, `campaign:${c.id}`, 'campaign', async (tx) => {
    const name = str(c.name ?? c.title) ?? refuse('a campaign needs a name')
    const statusIn = str(c.status)?.toLowerCase() ?? 'draft'
    const status = STATUS_ALIASES[statusIn] ?? refuse(`status ${JSON.stringify(statusIn)} is not one of ${CampaignStatus.options.join(', ')}`)
    const typeIn = str(c.type ?? c.objective)?.toLowerCase()
    const type = typeIn ? TYPE_ALIASES[typeIn] ?? refuse(`type ${JSON.stringify(typeIn)} is not one of ${CampaignType.options.join(', ')}`) : 'lead_generation'
    const budget = money('budget', c.budget ?? c.totalBudget)
    const cur = currency(c.currency) ?? (budget !== null ? refuse('a budget needs its currency') : null)
    const startsAt = legacyDate(c.startDate ?? c.start_date ?? c.startsAt)
    const endsAt = legacyDate(c.endDate ?? c.end_date ?? c.endsAt)
    if (startsAt === 'invalid') refuse(`startDate ${JSON.stringify(c.startDate ?? c.start_date ?? c.startsAt)} is not a date`)
    if (endsAt === 'invalid') refuse(`endDate ${JSON.stringify(c.endDate ?? c.end_date ?? c.endsAt)} is not a date`)
    if (startsAt instanceof Date && endsAt instanceof Date && endsAt < startsAt) refuse('endDate is before startDate')
    const productLegacy = str(c.productId ?? c.product_id ?? obj(c.product)?.id)
    const product = productLegacy ? ctx.done.get(`product:${productLegacy}`) ?? refuse(`product ${productLegacy} is neither in this dump nor imported before`) : null
    const utmCampaign = str(c.utmCampaign ?? c.utm_campaign ?? obj(c.utm)?.campaign)
    if (utmCampaign && /\s/.test(utmCampaign)) refuse(`utmCampaign ${JSON.stringify(utmCampaign)} has spaces`)
    if ((status === 'scheduled') && !(startsAt instanceof Date)) refuse('a scheduled campaign needs a startDate')
    const created = await q.insertCampaign(tx, ctx.who.tenantId, {
      name: name.slice(0, 200), type, status, description: (str(c.description) ?? '').slice(0, 5000), budget, currency: cur,
      startsAt: startsAt as Date | null, endsAt: endsAt as Date | null, productId: product?.targetId ?? null, utmCampaign: utmCampaign?.slice(0, 200) ?? null,
      config: legacyConfig(c), createdBy: ctx.who.actor, legacyKey: `campaign:${c.id}`,
    })
    await auditCampaign(tx, ctx.who, 'campaign.imported', created, { from: minimal ? 'campaign_minimal' : key })
    return created.id
  })
}

async function importDraft(ctx: Ctx, key: string, legacyId: string, d: Record<string, unknown>): Promise<void> {
  await importItem(ctx, { key, legacyId }, `draft:${legacyId}`, 'draft', async (tx) => {
    const data = obj(d.data ?? d.formData ?? d.state) ?? Object.fromEntries(Object.entries(d).filter(([f]) => !['step', 'currentStep', 'savedAt', 'lastSaved', 'timestamp'].includes(f)))
    if (Buffer.byteLength(JSON.stringify(data)) > DRAFT_MAX_BYTES) refuse(`larger than ${DRAFT_MAX_BYTES / 1024} KiB`)
    let campaign = ctx.done.get(`campaign:${legacyId}`)
    if (!campaign) {
      // A draft of a campaign the builder never saved: the campaign is created as a draft, so the work is not lost.
      const name = str(data.name ?? data.campaignName) ?? `Imported draft ${legacyId}`
      const created = await q.insertCampaign(tx, ctx.who.tenantId, {
        name: name.slice(0, 200), type: 'lead_generation', description: '', budget: null, currency: null, startsAt: null, endsAt: null, productId: null,
        utmCampaign: null, config: {}, createdBy: ctx.who.actor, legacyKey: `campaign:${legacyId}`,
      })
      await q.claimLegacyKey(tx, ctx.who.tenantId, { legacyKey: `campaign:${legacyId}`, targetType: 'campaign', targetId: created.id, importedBy: ctx.who.actor })
      await auditCampaign(tx, ctx.who, 'campaign.imported', created, { from: key })
      campaign = { targetType: 'campaign', targetId: created.id, importedAt: new Date() }
      ctx.done.set(`campaign:${legacyId}`, campaign)
    }
    const c = await q.findCampaign(tx, campaign.targetId)
    if (!c) refuse('its campaign was deleted since it was imported')
    const step = str(d.step ?? d.currentStep)?.slice(0, 100) ?? null
    // Imported now: the import counts as the draft's save (its 7 days start today).
    if ((await q.insertDraftIfAbsent(tx, ctx.who.tenantId, c!.id, { step, data, baseVersion: c!.version, savedAt: new Date(), ttlDays: DRAFT_TTL_DAYS })) === 0) {
      refuse('the campaign already has a newer draft')
    }
    return c!.id
  })
}

/** Imports a browser dump into the tenant, in one transaction, and reports what happened to every key and item. */
export const importLocalStorage = (sql: Sql, who: Actor, dump: Record<string, unknown>): Promise<ImportReport> => {
  // Structure first, before anything is written: a wrong shape refuses the whole dump.
  const lists: Partial<Record<(typeof LIST_KEYS)[number], (Record<string, unknown> & { id: string })[]>> = {}
  for (const key of LIST_KEYS) if (key in dump) lists[key] = parseShape(key, ListShape, parseValue(key, dump[key])) as never
  const drafts: [string, string, Record<string, unknown>][] = []
  const minimals: [string, Record<string, unknown> & { id: string }][] = []
  const others: string[] = []
  for (const key of Object.keys(dump)) {
    const draft = DRAFT_KEY.exec(key)
    const minimal = MINIMAL_KEY.exec(key)
    if (draft) drafts.push([key, draft[1]!, parseShape(key, ObjectShape, parseValue(key, dump[key]))])
    else if (minimal) minimals.push([key, { ...parseShape(key, ObjectShape, parseValue(key, dump[key])), id: minimal[1]! }])
    else if (!(LIST_KEYS as readonly string[]).includes(key)) others.push(key)
  }

  return withTenant(sql, who.tenantId, async (tx) => {
    const keys = [
      ...(lists.products ?? []).map((p) => `product:${p.id}`), ...(lists.backgrounds ?? []).map((b) => `background:${b.id}`),
      ...[...(lists.campaigns ?? []), ...(lists.saved_campaigns ?? [])].map((c) => `campaign:${c.id}`),
      ...minimals.map(([, m]) => `campaign:${m.id}`), ...drafts.flatMap(([, id]) => [`draft:${id}`, `campaign:${id}`]),
      // Campaigns and backgrounds may point at products imported by an earlier dump.
      ...[...(lists.campaigns ?? []), ...(lists.saved_campaigns ?? []), ...(lists.backgrounds ?? [])].map((x) => `product:${str(x.productId ?? x.product_id ?? obj(x.product)?.id)}`),
    ]
    const done = new Map((await q.findLegacyImports(tx, [...new Set(keys)])).map((r) => [r.legacyKey, r] as const))
    const ctx: Ctx = { tx, who, done, entries: [] }
    const seen = new Set<string>()
    const once = (key: string, id: string) => {
      if (seen.has(`${key}|${id}`)) {
        ctx.entries.push({ key, legacyId: id, outcome: 'skipped', reason: `id ${id} appears twice in ${key}` })
        return false
      }
      seen.add(`${key}|${id}`)
      return true
    }

    for (const p of lists.products ?? []) if (once('products', p.id)) await importProduct(ctx, 'products', p)
    for (const b of lists.backgrounds ?? []) if (once('backgrounds', b.id)) await importBackground(ctx, 'backgrounds', b)
    const inDump = new Set<string>()
    for (const key of ['campaigns', 'saved_campaigns'] as const) {
      for (const c of lists[key] ?? []) {
        if (!once(key, c.id)) continue
        if (inDump.has(c.id)) {
          ctx.entries.push({ key, legacyId: c.id, outcome: 'skipped', reason: `campaign ${c.id} is also in campaigns (imported from there)` })
          continue
        }
        inDump.add(c.id)
        await importCampaign(ctx, key, c)
      }
    }
    for (const [key, m] of minimals) {
      if (inDump.has(m.id)) ctx.entries.push({ key, legacyId: m.id, outcome: 'skipped', reason: 'the full campaign is in the dump (the minimal copy is only its fallback)' })
      else await importCampaign(ctx, key, m, true)
    }
    for (const [key, id, d] of drafts) await importDraft(ctx, key, id, d)
    for (const key of others) {
      ctx.entries.push({ key, outcome: 'skipped', reason: key === 'sample_data' ? "the old builder's demo data: not imported" : 'not a key of the campaign builder' })
    }

    const report: ImportReport = { summary: { imported: 0, skipped: 0, refused: 0 }, byKey: {}, entries: ctx.entries }
    for (const e of ctx.entries) {
      report.summary[e.outcome]++
      const perKey = (report.byKey[e.key] ??= { imported: 0, skipped: 0, refused: 0 })
      perKey[e.outcome]++
    }
    if (report.summary.imported > 0) {
      await insertAuditEntry(tx, {
        tenantId: who.tenantId, actor: who.actor, action: 'campaigns.imported_local_storage', targetType: 'tenant', targetId: who.tenantId,
        details: { ...report.summary, keys: Object.keys(report.byKey).length }, requestId: who.requestId ?? undefined,
      })
    }
    return report
  })
}
