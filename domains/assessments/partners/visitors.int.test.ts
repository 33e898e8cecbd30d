import { runOnce } from 'graphile-worker'
import { beforeAll, describe, expect, it } from 'vitest'
import { type Tx, withTenant } from '../../../lib/db.js'
import { crontab } from '../../../services/workers/crontab.js'
import { pruneClickDetailsTask } from '../../../services/workers/tasks/assessments__prune_click_details.js'
import { workerLogger } from '../../../services/workers/worker.js'
import { testConfig, testLogger } from '../../../test/apps.js'
import { useTestDatabase } from '../../../test/db.js'
import { makeLinkableAssessment, makePartner, makePartnerLink } from '../../../test/factories/assessment-partners-rows.js'
import { makeLead } from '../../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../../test/factories/tenants.js'
import { linkAnonymousIds } from '../../analytics/platform-events.js'
import { patchRetention } from '../../privacy/retention.js'
import { newVisitorId } from './links.js'
import * as q from './queries.js'
import { joinVisitorsToLeads, pruneClickDetails } from './visitors.js'

const day = 86_400_000
const at = (daysAgo: number) => new Date(Date.now() - daysAgo * day)

describe('partner-link visitors and leads', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  let other: TestTenant
  let x: { partner: { id: string }; link: { id: string } }
  let y: { partner: { id: string }; link: { id: string } }
  let w: { partner: { id: string }; link: { id: string } }
  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
    ;[x, y, w] = await withTenant(db.current.sql, tenant.id, async (tx) => {
      const assessment = await makeLinkableAssessment(tx, tenant.id)
      const one = async () => {
        const partner = await makePartner(tx, tenant.id)
        return { partner, link: await makePartnerLink(tx, tenant.id, partner.id, assessment.id) }
      }
      return [await one(), await one(), await one()]
    })
  })

  const as = <T>(run: (tx: Tx) => Promise<T>, t = tenant) => withTenant(db.current.sql, t.id, run)
  const touch = (p: typeof x, when: Date, by: { leadId?: string; visitorId?: string }) =>
    as((tx) => q.touchAttribution(tx, tenant.id, { partnerId: p.partner.id, linkId: p.link.id, channel: 'web', at: when, ...by }))
  const attribution = (by: { leadId?: string; visitorId?: string }) => as((tx) => q.findAttribution(tx, by))

  describe('joining a visitor to a lead (joinVisitorsToLeads)', () => {
    it('merges into the lead\'s own attribution: the earlier first touch, the later last touch, touches summed', async () => {
      const lead = await as((tx) => makeLead(tx, tenant.id))
      const visitor = newVisitorId()
      // The lead's own touches (e.g. WhatsApp) lie inside the visitor's: the visitor's first and last win.
      await touch(w, at(10), { leadId: lead.id })
      await touch(w, at(8), { leadId: lead.id })
      await touch(x, at(20), { visitorId: visitor })
      await touch(y, at(2), { visitorId: visitor })
      const own = (await attribution({ leadId: lead.id }))!

      expect(await as((tx) => joinVisitorsToLeads(tx, [{ visitorId: visitor, leadId: lead.id }]))).toEqual({ clicks: 0, attributions: 1 })
      const merged = (await attribution({ leadId: lead.id }))!
      expect(merged).toMatchObject({
        id: own.id, firstPartnerId: x.partner.id, firstLinkId: x.link.id,
        lastPartnerId: y.partner.id, lastLinkId: y.link.id, touches: 4,
      })
      expect(Math.abs(merged.firstAt.getTime() - (Date.now() - 20 * day))).toBeLessThan(60_000)
      expect(Math.abs(merged.lastAt.getTime() - (Date.now() - 2 * day))).toBeLessThan(60_000)
      expect(await attribution({ visitorId: visitor })).toBeNull()

      // Again: nothing left to join, nothing counted twice.
      expect(await as((tx) => joinVisitorsToLeads(tx, [{ visitorId: visitor, leadId: lead.id }]))).toEqual({ clicks: 0, attributions: 0 })
      expect(await attribution({ leadId: lead.id })).toEqual(merged)
    })

    it('keeps the lead\'s first and last touch when the visitor\'s lie between them', async () => {
      const lead = await as((tx) => makeLead(tx, tenant.id))
      const visitor = newVisitorId()
      await touch(w, at(30), { leadId: lead.id })
      await touch(x, at(1), { leadId: lead.id })
      await touch(y, at(15), { visitorId: visitor })
      await as((tx) => joinVisitorsToLeads(tx, [{ visitorId: visitor, leadId: lead.id }]))
      expect(await attribution({ leadId: lead.id })).toMatchObject({ firstPartnerId: w.partner.id, lastPartnerId: x.partner.id, lastLinkId: x.link.id, touches: 3 })
    })

    it('makes the visitor\'s row the lead\'s when the lead had none, folding two visitors of one lead together', async () => {
      const lead = await as((tx) => makeLead(tx, tenant.id))
      const laptop = newVisitorId()
      const phone = newVisitorId()
      await touch(y, at(5), { visitorId: laptop })
      await touch(x, at(9), { visitorId: phone })
      await touch(w, at(3), { visitorId: phone })
      const clicks = await as(async (tx) => {
        for (const [visitorId, p] of [[laptop, y], [phone, x]] as const) {
          await q.insertClick(tx, tenant.id, { linkId: p.link.id, partnerId: p.partner.id, outcome: 'web', visitorId, ipPrefix: null, ipHash: null, userAgent: null, referrer: null, isBot: false, at: new Date() })
        }
        return joinVisitorsToLeads(tx, [{ visitorId: laptop, leadId: lead.id }, { visitorId: phone, leadId: lead.id }, { visitorId: 'not-a-cookie', leadId: lead.id }])
      })
      expect(clicks).toEqual({ clicks: 2, attributions: 2 })
      expect(await attribution({ leadId: lead.id })).toMatchObject({ firstPartnerId: x.partner.id, lastPartnerId: w.partner.id, touches: 3, visitorId: null })
      const rows = await db.current.owner<{ leadId: string }[]>`select lead_id from assessments.link_clicks where visitor_id in (${laptop}, ${phone})`
      expect(rows).toEqual([{ leadId: lead.id }, { leadId: lead.id }])
    })

    it('joins through the analytics link of the anonymous id, to the lead that link names (the first)', async () => {
      const [first, second] = await as(async (tx) => [await makeLead(tx, tenant.id), await makeLead(tx, tenant.id)])
      const visitor = newVisitorId()
      await touch(x, at(4), { visitorId: visitor })
      await as((tx) => linkAnonymousIds(tx, [{ anonymousId: visitor, leadId: first!.id, via: 'form' }]))
      expect(await attribution({ leadId: first!.id })).toMatchObject({ firstPartnerId: x.partner.id, touches: 1 })
      // A touch that slipped in as a visitor's meanwhile joins the first lead on the next link attempt, never the second.
      await touch(y, at(1), { visitorId: visitor })
      await as((tx) => linkAnonymousIds(tx, [{ anonymousId: visitor, leadId: second!.id, via: 'form' }]))
      expect(await attribution({ leadId: first!.id })).toMatchObject({ lastPartnerId: y.partner.id, touches: 2 })
      expect(await attribution({ leadId: second!.id })).toBeNull()
    })

    it('cannot join another tenant\'s visitor', async () => {
      const visitor = newVisitorId()
      await touch(x, at(1), { visitorId: visitor })
      const foreign = await as((tx) => makeLead(tx, other.id), other)
      expect(await as((tx) => joinVisitorsToLeads(tx, [{ visitorId: visitor, leadId: foreign.id }]), other)).toEqual({ clicks: 0, attributions: 0 })
      expect(await attribution({ visitorId: visitor })).not.toBeNull()
    })
  })

  describe('pruning the details of clicks that name no lead (assessments__prune_click_details)', () => {
    /** A click of `t` `daysAgo` old, with every detail; linked to a lead when asked. */
    const clickOf = async (t: TestTenant, daysAgo: number, lead = false) => {
      const p = t === tenant ? x : await as(async (tx) => {
        const assessment = await makeLinkableAssessment(tx, t.id)
        const partner = await makePartner(tx, t.id)
        return { partner, link: await makePartnerLink(tx, t.id, partner.id, assessment.id) }
      }, t)
      return as(async (tx) => {
        const leadId = lead ? (await makeLead(tx, t.id)).id : null
        return q.insertClick(tx, t.id, {
          linkId: p.link.id, partnerId: p.partner.id, outcome: 'web', visitorId: newVisitorId(), leadId, ipPrefix: '203.0.113.0/24', ipHash: 'h',
          userAgent: 'Mozilla/5.0', referrer: 'https://instagram.com/x', isBot: false, at: at(daysAgo),
        })
      }, t)
    }
    const detailsOf = async (id: string) =>
      (await db.current.owner<{ ipPrefix: string | null; ipHash: string | null; userAgent: string | null; referrer: string | null }[]>`
        select ip_prefix::text, ip_hash, user_agent, referrer from assessments.link_clicks where id = ${id}`)[0]
    const FULL = { ipPrefix: '203.0.113.0/24', ipHash: 'h', userAgent: 'Mozilla/5.0', referrer: 'https://instagram.com/x' }
    const NONE = { ipPrefix: null, ipHash: null, userAgent: null, referrer: null }

    it('has an hourly crontab line with an id', () => {
      expect(crontab.some((line) => /^\d+ \* \* \* \* assessments__prune_click_details \?id=\S+/.test(line))).toBe(true)
    })

    it('nulls the details of old unlinked clicks in batches and keeps recent, lead-linked and other tenants\' clicks', async () => {
      await db.current.owner`update assessments.link_clicks set ip_prefix = null, ip_hash = null, user_agent = null, referrer = null`
      const third = await makeTenant(db.current.sql)
      // The other tenant keeps details for a year; a third, without settings, has the default 30 days.
      await patchRetention(db.current.sql, testConfig(), { tenantId: other.id, actor: 'test', requestId: null }, { linkClickDetailsDays: 365 })
      const old = [await clickOf(tenant, 40), await clickOf(tenant, 31), await clickOf(tenant, 90)]
      const recent = await clickOf(tenant, 29)
      const linked = await clickOf(tenant, 60, true)
      const otherOld = await clickOf(other, 40)
      const otherAncient = await clickOf(other, 400)
      const thirdOld = await clickOf(third, 45)
      const counted = await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.link_clicks`

      // Batches of 2 under the application's role (security definer; RLS forced on both tables).
      let total = 0
      for (let n = 2; n === 2; total += n) n = await pruneClickDetails(db.current.sql, 2, 30)
      expect(total).toBe(5)
      for (const id of [...old, otherAncient, thirdOld]) expect(await detailsOf(id)).toEqual(NONE)
      for (const id of [recent, linked, otherOld]) expect(await detailsOf(id)).toEqual(FULL)
      expect(await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.link_clicks`).toEqual(counted)
      expect(await pruneClickDetails(db.current.sql, 2, 30)).toBe(0)
    })

    it('follows the tenant\'s own setting, and skips a click another transaction holds', async () => {
      await db.current.owner`update assessments.link_clicks set ip_prefix = null, ip_hash = null, user_agent = null, referrer = null`
      await patchRetention(db.current.sql, testConfig(), { tenantId: tenant.id, actor: 'test', requestId: null }, { linkClickDetailsDays: 7 })
      const kept = await clickOf(tenant, 6)
      const week = await clickOf(tenant, 8)
      const held = await clickOf(tenant, 9)
      await db.current.owner.begin(async (holder) => {
        await holder`select 1 from assessments.link_clicks where id = ${held} for update`
        expect(await pruneClickDetails(db.current.sql, 100, 30)).toBe(1)
      })
      expect(await detailsOf(week)).toEqual(NONE)
      expect(await detailsOf(held)).toEqual(FULL)
      expect(await detailsOf(kept)).toEqual(FULL)
    })

    it('runs as the cron task through graphile-worker', async () => {
      const old = await clickOf(tenant, 50)
      await db.current.owner`select graphile_worker.add_job('assessments__prune_click_details', '{}'::json)`
      await runOnce({
        connectionString: db.current.runtimeUrl,
        taskList: { assessments__prune_click_details: pruneClickDetailsTask({ config: testConfig(), sql: db.current.sql, log: testLogger() }) },
        logger: workerLogger(testLogger()),
      })
      expect(await detailsOf(old)).toEqual(NONE)
    })
  })
})
