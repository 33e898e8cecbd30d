import { z } from 'zod'
import type { App } from '../../../../lib/http/create-server.js'
import {
  CommissionStatus, CommissionView, CompleteWithdrawalBody, CreateLinkBody, CreatePartnerBody, CreatePartnerKeyBody, PartnerKeyView, CreateProductBody, DecisionBody,
  LedgerEntryView, LinkView, PartnerReport, PartnerView, PatchLinkBody, PatchPartnerBody, PatchProductBody, ProductView, PurchaseView,
  RecordPurchaseBody, ReportQuery, RequestWithdrawalBody, ShopEndpointView, WithdrawalStatus, WithdrawalView,
} from '../../../../domains/assessments/partners/schemas.js'
import {
  createLink, createPartner, getLink, getPartner, listLinks, listPartners, partnerReport, patchLink, patchPartner,
} from '../../../../domains/assessments/partners/service.js'
import {
  createProduct, decideCommission, decideWithdrawal, getShopEndpoint, listCommissions, listLedger, listProducts, listPurchases,
  listWithdrawals, patchProduct, recordPurchaseByApi, refundPurchaseByApi, requestWithdrawal, rotateShopEndpoint,
} from '../../../../domains/assessments/partners/money.js'
import { createPartnerKey, listPartnerKeys, revokePartnerKey } from '../../../../domains/assessments/partners/keys.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const tags = ['assessment partners']
const PartnerParams = z.object({ partnerId: z.uuid() })
const LinkParams = z.object({ linkId: z.uuid() })
const ProductParams = z.object({ productId: z.uuid() })
const CommissionParams = z.object({ commissionId: z.uuid() })
const WithdrawalParams = z.object({ withdrawalId: z.uuid() })
const TransactionParams = z.object({ transactionId: z.string().min(1).max(200) })
const Limit = z.coerce.number().int().min(1).max(500).default(100)
const list = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item) })

/**
 * Partners (a tenant's distributors), their links, products, purchases, commissions, withdrawals and the ledger, under
 * /v1/assessments. Reads need a tenant key; every change an admin key. Withdrawals are requested by the partner with its
 * own key (/v1/partner, services/api/modules/partner-portal) or by an admin acting for it; the requesting key is recorded.
 */
export default async function assessmentPartnerRoutes(app: App, deps: ApiDeps) {
  const { sql, config } = deps

  // Partners
  app.post('/partners', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Create a partner: a code unique in the tenant, a default commission rate, a tier.', body: CreatePartnerBody, response: { 201: PartnerView } },
  }, async (req, reply) => reply.code(201).send(await createPartner(sql, actorOf(req), req.body)))

  app.get('/partners', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: "This tenant's partners with their balances.", response: { 200: list(PartnerView) } },
  }, async (req) => ({ data: await listPartners(sql, tenantOf(req).tenantId) }))

  app.get('/partners/:partnerId', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'One partner.', params: PartnerParams, response: { 200: PartnerView } },
  }, async (req) => getPartner(sql, tenantOf(req).tenantId, req.params.partnerId))

  app.patch('/partners/:partnerId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: "Change a partner's name, rate, tier or status (earned commissions keep the rate they were computed with).", params: PartnerParams, body: PatchPartnerBody, response: { 200: PartnerView } },
  }, async (req) => patchPartner(sql, actorOf(req), req.params.partnerId, req.body))

  app.get('/partners/:partnerId/report', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'Per link and in total, from the analytics rollups (raw events after the watermark: see meta): clicks, visitors, starts, completions, conversions and revenue net of refunds, commission amounts by the status they entered (default: the last 30 days).', params: PartnerParams, querystring: ReportQuery, response: { 200: PartnerReport } },
  }, async (req) => partnerReport(sql, tenantOf(req).tenantId, req.params.partnerId, req.query))

  app.get('/partners/:partnerId/ledger', {
    config: { access: 'tenant:read' },
    schema: {
      tags, summary: "The partner's money movements, oldest first, each with the running balance after it.", params: PartnerParams,
      querystring: z.object({ after: z.string().regex(/^\d{1,18}$/).optional(), limit: Limit }),
      response: { 200: list(LedgerEntryView) },
    },
  }, async (req) => ({ data: await listLedger(sql, tenantOf(req).tenantId, req.params.partnerId, req.query.after ?? null, req.query.limit) }))

  app.post('/partners/:partnerId/withdrawals', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: "Request a withdrawal for the partner: debited from the balance at once; above the balance → 422.", params: PartnerParams, body: RequestWithdrawalBody, response: { 201: WithdrawalView } },
  }, async (req, reply) => reply.code(201).send(await requestWithdrawal(sql, actorOf(req), req.params.partnerId, req.body.amount)))

  // Partner keys: the partner's own credential for /v1/partner (its own data only); shown once.
  const KeyParams = PartnerParams.extend({ keyId: z.uuid() })
  app.post('/partners/:partnerId/keys', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: "Create a key for the partner (answered once): it reads the partner's own links, clicks, commissions, balance, ledger and report under /v1/partner and requests withdrawals, nothing else.", params: PartnerParams, body: CreatePartnerKeyBody, response: { 201: PartnerKeyView } },
  }, async (req, reply) => reply.code(201).send(await createPartnerKey(sql, actorOf(req), req.params.partnerId, req.body.label)))

  app.get('/partners/:partnerId/keys', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: "The partner's keys (never the keys themselves).", params: PartnerParams, response: { 200: list(PartnerKeyView) } },
  }, async (req) => ({ data: await listPartnerKeys(sql, tenantOf(req).tenantId, req.params.partnerId) }))

  app.post('/partners/:partnerId/keys/:keyId/revoke', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Revoke a partner key: it authenticates nothing from now on.', params: KeyParams, response: { 200: PartnerKeyView } },
  }, async (req) => revokePartnerKey(sql, actorOf(req), req.params.partnerId, req.params.keyId))

  // Links
  app.post('/links', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: "Create a partner's link to an assessment (code given or random); its url is what visitors open.", body: CreateLinkBody, response: { 201: LinkView } },
  }, async (req, reply) => reply.code(201).send(await createLink(sql, config, actorOf(req), req.body)))

  app.get('/links', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: "This tenant's links, or one partner's.", querystring: z.object({ partnerId: z.uuid().optional() }), response: { 200: list(LinkView) } },
  }, async (req) => ({ data: await listLinks(sql, config, tenantOf(req).tenantId, req.query.partnerId ?? null) }))

  app.get('/links/:linkId', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'One link.', params: LinkParams, response: { 200: LinkView } },
  }, async (req) => getLink(sql, config, tenantOf(req).tenantId, req.params.linkId))

  app.patch('/links/:linkId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Change a link (active: false makes its visits answer 404, counted).', params: LinkParams, body: PatchLinkBody, response: { 200: LinkView } },
  }, async (req) => patchLink(sql, config, actorOf(req), req.params.linkId, req.body))

  // Products and the shop
  app.post('/products', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Create a product (the shop\'s sku) with its price and, optionally, its own commission rate.', body: CreateProductBody, response: { 201: ProductView } },
  }, async (req, reply) => reply.code(201).send(await createProduct(sql, actorOf(req), req.body)))

  app.get('/products', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: "This tenant's products.", response: { 200: list(ProductView) } },
  }, async (req) => ({ data: await listProducts(sql, tenantOf(req).tenantId) }))

  app.patch('/products/:productId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Change a product (new purchases only).', params: ProductParams, body: PatchProductBody, response: { 200: ProductView } },
  }, async (req) => patchProduct(sql, actorOf(req), req.params.productId, req.body))

  app.post('/shop-endpoint', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: "Create or rotate the shop's signed purchase webhook: its URL and secret (shown once).", response: { 201: ShopEndpointView } },
  }, async (req, reply) => reply.code(201).send(await rotateShopEndpoint(sql, config, deps.secrets, actorOf(req))))

  app.get('/shop-endpoint', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: "The shop webhook's URL (not its secret).", response: { 200: ShopEndpointView } },
  }, async (req) => getShopEndpoint(sql, config, tenantOf(req).tenantId))

  // Purchases
  app.post('/purchases', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Record a purchase (once per transactionId: a repeat answers 200 with the stored one) and its commission.', body: RecordPurchaseBody, response: { 200: PurchaseView, 201: PurchaseView } },
  }, async (req, reply) => {
    const r = await recordPurchaseByApi(sql, actorOf(req), req.body)
    return reply.code(r.created ? 201 : 200).send(r.purchase)
  })

  app.get('/purchases', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'Purchases, newest first, with their commissions.', querystring: z.object({ partnerId: z.uuid().optional(), limit: Limit }), response: { 200: list(PurchaseView) } },
  }, async (req) => ({ data: await listPurchases(sql, tenantOf(req).tenantId, req.query.partnerId ?? null, req.query.limit) }))

  app.post('/purchases/:transactionId/refund', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Refund a purchase: its commission is reversed (a second refund changes nothing).', params: TransactionParams, response: { 200: PurchaseView } },
  }, async (req) => refundPurchaseByApi(sql, actorOf(req), req.params.transactionId))

  // Commissions
  app.get('/commissions', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'Commissions, newest first.', querystring: z.object({ partnerId: z.uuid().optional(), status: CommissionStatus.optional(), limit: Limit }), response: { 200: list(CommissionView) } },
  }, async (req) => ({ data: await listCommissions(sql, tenantOf(req).tenantId, { partnerId: req.query.partnerId, status: req.query.status }, req.query.limit) }))

  for (const decision of ['approve', 'reject'] as const) {
    app.post(`/commissions/:commissionId/${decision}`, {
      config: { access: 'tenant:write' },
      schema: {
        tags, summary: decision === 'approve' ? 'Approve a pending commission: the partner\'s balance is credited.' : 'Reject a pending commission.',
        params: CommissionParams, body: DecisionBody.optional(), response: { 200: CommissionView },
      },
    }, async (req) => decideCommission(sql, actorOf(req), req.params.commissionId, decision, req.body?.reason ?? null))
  }

  // Withdrawals
  app.get('/withdrawals', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'Withdrawals, newest first.', querystring: z.object({ partnerId: z.uuid().optional(), status: WithdrawalStatus.optional(), limit: Limit }), response: { 200: list(WithdrawalView) } },
  }, async (req) => ({ data: await listWithdrawals(sql, tenantOf(req).tenantId, { partnerId: req.query.partnerId, status: req.query.status }, req.query.limit) }))

  app.post('/withdrawals/:withdrawalId/approve', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Approve a requested withdrawal.', params: WithdrawalParams, body: DecisionBody.optional(), response: { 200: WithdrawalView } },
  }, async (req) => decideWithdrawal(sql, actorOf(req), req.params.withdrawalId, 'approve', { reason: req.body?.reason }))

  app.post('/withdrawals/:withdrawalId/reject', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Reject a withdrawal (requested or approved): its amount goes back to the balance.', params: WithdrawalParams, body: DecisionBody.optional(), response: { 200: WithdrawalView } },
  }, async (req) => decideWithdrawal(sql, actorOf(req), req.params.withdrawalId, 'reject', { reason: req.body?.reason }))

  app.post('/withdrawals/:withdrawalId/complete', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Mark an approved withdrawal paid out (with the payout reference): the commissions it covers become paid.', params: WithdrawalParams, body: CompleteWithdrawalBody, response: { 200: WithdrawalView } },
  }, async (req) => decideWithdrawal(sql, actorOf(req), req.params.withdrawalId, 'complete', { reference: req.body.reference }))
}
