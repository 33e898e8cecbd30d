import { z } from 'zod'
import type { App } from '../../../../lib/http/create-server.js'
import {
  CommissionStatus, CommissionView, LedgerEntryView, LinkView, PartnerClickView, PartnerReport, PartnerView, ReportQuery, RequestWithdrawalBody, WithdrawalView,
} from '../../../../domains/assessments/partners/schemas.js'
import {
  portalClicks, portalCommissions, portalLedger, portalLinks, portalProfile, portalReport, portalRequestWithdrawal, portalWithdrawals,
} from '../../../../domains/assessments/partners/portal.js'
import type { ApiDeps } from '../../app.js'
import { partnerOf } from '../../plugins/auth.js'

const tags = ['partner portal']
const Limit = z.coerce.number().int().min(1).max(500).default(100)
const list = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item) })
const access = 'partner' as const

/**
 * /v1/partner: a partner with its own key (created by a tenant admin) reads its own profile and balance, links,
 * clicks, commissions, withdrawals, ledger and report, and requests withdrawals. No route takes a partner id: the
 * key says which partner. Approvals, links and every other tenant route refuse a partner key (403).
 */
export default async function partnerPortalRoutes(app: App, deps: ApiDeps) {
  const { sql, config } = deps

  app.get('/', {
    config: { access },
    schema: { tags, summary: 'The partner: code, rates, tier, status, balance and clawback due.', response: { 200: PartnerView } },
  }, async (req) => portalProfile(sql, partnerOf(req)))

  app.get('/links', {
    config: { access },
    schema: { tags, summary: "The partner's links.", response: { 200: list(LinkView) } },
  }, async (req) => ({ data: await portalLinks(sql, config, partnerOf(req)) }))

  app.get('/clicks', {
    config: { access },
    schema: {
      tags, summary: "Visits of the partner's links, newest first (no visitor, address or browser: those stay with the tenant).",
      querystring: z.object({ before: z.string().regex(/^\d{1,18}$/).optional(), limit: Limit }),
      response: { 200: list(PartnerClickView).extend({ nextCursor: z.string().nullable() }) },
    },
  }, async (req) => portalClicks(sql, partnerOf(req), req.query.before ?? null, req.query.limit))

  app.get('/commissions', {
    config: { access },
    schema: { tags, summary: "The partner's commissions, newest first.", querystring: z.object({ status: CommissionStatus.optional(), limit: Limit }), response: { 200: list(CommissionView) } },
  }, async (req) => ({ data: await portalCommissions(sql, partnerOf(req), req.query.status, req.query.limit) }))

  app.get('/ledger', {
    config: { access },
    schema: {
      tags, summary: "The partner's money movements, oldest first, each with the running balance after it.",
      querystring: z.object({ after: z.string().regex(/^\d{1,18}$/).optional(), limit: Limit }), response: { 200: list(LedgerEntryView) },
    },
  }, async (req) => ({ data: await portalLedger(sql, partnerOf(req), req.query.after ?? null, req.query.limit) }))

  app.get('/report', {
    config: { access },
    schema: { tags, summary: "The partner's report per link (as the tenant sees it).", querystring: ReportQuery, response: { 200: PartnerReport } },
  }, async (req) => portalReport(sql, partnerOf(req), req.query))

  app.get('/withdrawals', {
    config: { access },
    schema: { tags, summary: "The partner's withdrawals, newest first.", querystring: z.object({ limit: Limit }), response: { 200: list(WithdrawalView) } },
  }, async (req) => ({ data: await portalWithdrawals(sql, partnerOf(req), req.query.limit) }))

  app.post('/withdrawals', {
    config: { access },
    schema: { tags, summary: 'Request a withdrawal: debited from the balance at once; above the balance → 422. An admin approves and completes it.', body: RequestWithdrawalBody, response: { 201: WithdrawalView } },
  }, async (req, reply) => reply.code(201).send(await portalRequestWithdrawal(sql, partnerOf(req), req.body.amount, req.id)))
}
