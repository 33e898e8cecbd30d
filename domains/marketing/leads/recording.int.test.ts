import { beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../../lib/db.js'
import { useTestDatabase } from '../../../test/db.js'
import { makeLead } from '../../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../../test/factories/tenants.js'
import { changeLeads, optOutLeads, recordConsents, recordInteractions, upsertWhatsAppSenders } from './service.js'

/** What WhatsApp ingestion, forms and the bot record about leads, through the lead domain's own functions. */
describe('recording leads, interactions and consents for other domains', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
  })
  const inTenant = <T>(fn: Parameters<typeof withTenant<T>>[2]) => withTenant(db.current.sql, tenant.id, fn)
  const lead = (id: string) =>
    db.current.owner<{ waId: string | null; profileName: string | null; source: string; sourceDetails: unknown; firstSeenAt: Date; lastSeenAt: Date; tags: string[]; status: string; email: string | null; fields: unknown; optedOutAt: Date | null }[]>`
      select wa_id, profile_name, source, source_details, first_seen_at, last_seen_at, tags, status, email, fields, opted_out_at
        from marketing.leads where id = ${id}`.then((r) => r[0]!)

  describe('upsertWhatsAppSenders', () => {
    it('folds one person\'s messages of a batch into one lead: first source, latest wa_id and name, earliest and latest times', async () => {
      const ids = await inTenant((tx) => upsertWhatsAppSenders(tx, tenant.id, [
        { phoneKey: '+5511900000001', phoneE164: '+5511900000001', waId: '5511900000001', profileName: 'Ana', source: 'whatsapp_ad', sourceDetails: { referral: { sourceId: 'ad1' } }, at: '2026-11-30T10:00:05.000Z' },
        { phoneKey: '+5511900000002', phoneE164: '+5511900000002', waId: '5511900000002', profileName: null, source: 'whatsapp', sourceDetails: {}, at: new Date('2026-11-30T10:00:00.000Z') },
        { phoneKey: '+5511900000001', phoneE164: '+5511900000001', waId: '551100000001', profileName: 'Ana Souza', source: 'whatsapp', sourceDetails: {}, at: '2026-11-30T10:00:01.000Z' },
        { phoneKey: '+5511900000001', phoneE164: '+5511900000001', waId: '551100000001', profileName: null, source: 'whatsapp', sourceDetails: {}, at: '2026-11-30T10:00:09.000Z' },
      ]))
      expect([...ids.keys()].sort()).toEqual(['+5511900000001', '+5511900000002'])
      expect(await lead(ids.get('+5511900000001')!)).toMatchObject({
        waId: '551100000001', profileName: 'Ana Souza', source: 'whatsapp_ad', sourceDetails: { referral: { sourceId: 'ad1' } },
        firstSeenAt: new Date('2026-11-30T10:00:01.000Z'), lastSeenAt: new Date('2026-11-30T10:00:09.000Z'),
      })
    })

    it('finds the live lead a key already has, keeps its source and name, and only widens its times (a replay changes nothing)', async () => {
      const known = await inTenant((tx) => makeLead(tx, tenant.id, { phoneE164: '+5511900000003', waId: '5511900000003', source: 'web_form' }))
      await db.current.owner`update marketing.leads set profile_name = 'Bia', first_seen_at = '2026-11-01', last_seen_at = '2026-11-02' where id = ${known.id}`
      const sighting = { phoneKey: '+5511900000003', phoneE164: '+5511900000003', waId: '5511900000003', profileName: null, source: 'whatsapp', sourceDetails: {}, at: '2026-11-01T12:00:00.000Z' }
      for (let i = 0; i < 2; i++) {
        const ids = await inTenant((tx) => upsertWhatsAppSenders(tx, tenant.id, [sighting]))
        expect(ids.get('+5511900000003')).toBe(known.id)
      }
      expect(await lead(known.id)).toMatchObject({ source: 'web_form', profileName: 'Bia', firstSeenAt: new Date('2026-11-01T00:00:00.000Z'), lastSeenAt: new Date('2026-11-02T00:00:00.000Z') })
      expect(await db.current.owner`select id from marketing.leads where phone_key = '+5511900000003'`).toHaveLength(1)
    })
  })

  describe('recordInteractions and recordConsents', () => {
    it('adds a batch of interactions once per dedupe key, under the transaction\'s tenant', async () => {
      const a = await inTenant((tx) => makeLead(tx, tenant.id, { email: 'interactions@example.com' }))
      const rows = [
        { leadId: a.id, type: 'form_submitted', channel: 'web', occurredAt: new Date('2026-11-30T09:00:00.000Z'), details: { formId: 'f' }, dedupeKey: 'rec:1' },
        { leadId: a.id, type: 'note', channel: 'api', actor: 'api_key:k', occurredAt: '2026-11-30T09:00:01.000Z' },
      ]
      expect(await inTenant((tx) => recordInteractions(tx, rows))).toBe(2)
      expect(await inTenant((tx) => recordInteractions(tx, [rows[0]!]))).toBe(0)
      const stored = await db.current.owner<{ tenantId: string; type: string; channel: string; actor: string; details: unknown; dedupeKey: string | null }[]>`
        select tenant_id, type, channel, actor, details, dedupe_key from marketing.lead_interactions where lead_id = ${a.id} order by id`
      expect(stored).toEqual([
        { tenantId: tenant.id, type: 'form_submitted', channel: 'web', actor: 'lead', details: { formId: 'f' }, dedupeKey: 'rec:1' },
        { tenantId: tenant.id, type: 'note', channel: 'api', actor: 'api_key:k', details: {}, dedupeKey: null },
      ])
    })

    it('adds consents with their policy, ip and user agent', async () => {
      const a = await inTenant((tx) => makeLead(tx, tenant.id, { email: 'consent@example.com' }))
      await inTenant((tx) => recordConsents(tx, [{
        leadId: a.id, channel: 'web_form', granted: true, purpose: 'marketing', policyVersion: 'v3', policyUrl: 'https://example.com/p',
        ip: '203.0.113.9', userAgent: 'UA/1', occurredAt: '2026-11-30T09:00:00.000Z',
      }]))
      const rows = await db.current.owner`select tenant_id, granted, purpose, policy_version, host(ip) as ip, user_agent from marketing.consents where lead_id = ${a.id}`
      expect(rows).toEqual([{ tenantId: tenant.id, granted: true, purpose: 'marketing', policyVersion: 'v3', ip: '203.0.113.9', userAgent: 'UA/1' }])
    })
  })

  describe('what the bot changes', () => {
    it('keeps tags sorted and unique, sets status, and keeps an email another lead holds in fields', async () => {
      const holder = await inTenant((tx) => makeLead(tx, tenant.id, { email: 'taken@example.com' }))
      const a = await inTenant((tx) => makeLead(tx, tenant.id, { tags: ['vip'] }))
      const b = await inTenant((tx) => makeLead(tx, tenant.id, { tags: ['b2b', 'vip'] }))
      await inTenant(async (tx) => {
        await changeLeads(tx, [b.id, a.id], { type: 'add_tags', tags: ['hot', 'vip'] })
        await changeLeads(tx, [a.id, b.id], { type: 'remove_tags', tags: ['b2b'] })
        await changeLeads(tx, [a.id], { type: 'set_status', status: 'qualified' })
        await changeLeads(tx, [a.id], { type: 'set_field', field: 'email', value: 'taken@example.com' })
        await changeLeads(tx, [b.id], { type: 'set_field', field: 'email', value: 'free@example.com' })
      })
      expect(await lead(a.id)).toMatchObject({ tags: ['hot', 'vip'], status: 'qualified', email: null, fields: { email: 'taken@example.com' } })
      expect(await lead(b.id)).toMatchObject({ tags: ['hot', 'vip'], status: 'new', email: 'free@example.com' })
      expect((await lead(holder.id)).email).toBe('taken@example.com')
    })

    it('opts a lead out once: the first time counts, and the interaction is added once', async () => {
      const a = await inTenant((tx) => makeLead(tx, tenant.id, { waId: '5511900000009', phoneE164: '+5511900000009' }))
      const first = new Date('2026-11-30T11:00:00.000Z')
      const stop = { leadId: a.id, channel: 'whatsapp', occurredAt: first, messageId: null, details: { text: 'STOP' }, dedupeKey: `opt-out:${a.id}` }
      await inTenant((tx) => optOutLeads(tx, first, [stop]))
      await inTenant((tx) => optOutLeads(tx, new Date('2026-11-30T12:00:00.000Z'), [stop]))
      expect((await lead(a.id)).optedOutAt).toEqual(first)
      const rows = await db.current.owner`select type, actor from marketing.lead_interactions where lead_id = ${a.id}`
      expect(rows).toEqual([{ type: 'opt_out', actor: 'lead' }])
    })
  })
})
