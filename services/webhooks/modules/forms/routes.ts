import cors from '@fastify/cors'
import formbody from '@fastify/formbody'
import rateLimit from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import { isbot } from 'isbot'
import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import { countSubmissionAcknowledged } from '../../../../lib/metrics.js'
import type { App } from '../../../../lib/http/create-server.js'
import { SubmissionInbox } from '../../../../domains/marketing/forms/inbox.js'
import { acceptSubmission, loadPublicForm, originAllowed, type PublicForm } from '../../../../domains/marketing/forms/service.js'
import { SubmissionAccepted } from '../../../../domains/marketing/forms/views.js'
import { visitorIdFromCookie } from '../../../../domains/assessments/partners/cookies.js'
import { EventInbox } from '../../../../domains/analytics/service.js'
import { formViewedEvent } from '../../../../domains/analytics/platform-events.js'
import type { WebhooksDeps } from '../../app.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The form a public route's key names, loaded in onRequest (before the body is read). */
    publicForm: PublicForm | null
  }
}

const PublicKeyParams = z.object({ publicKey: z.string().max(100) })
// Any object: the fields are checked against the form's own definition, which a static schema cannot know.
const SubmissionBody = z.record(z.string(), z.unknown())
const PixelQuery = z.object({
  /** The page's anonymous visitor id (the same the site sends to POST /v1/events). */
  aid: z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, 'printable ASCII'),
  /** Optional: the page's id for this one view. */
  vid: z.uuid().optional(),
})
/** A transparent 1×1 GIF. */
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64')

/** The key in the path. Preflights reach the CORS plugin's wildcard OPTIONS route, whose `*` is `/<key>/submissions`. */
const publicKeyOf = (req: FastifyRequest) => {
  const params = req.params as { publicKey?: string; '*'?: string }
  return params.publicKey ?? params['*']?.split('/').find((part) => part !== '') ?? ''
}

/**
 * Public lead forms: `POST /forms/:publicKey/submissions`, from a plain HTML form (urlencoded, answered with a 303
 * to the thank-you target) or from script (JSON). Everything that can refuse a request without reading its body
 * (rate limits, unknown or archived form, a browser origin the form does not allow) runs in onRequest; what the
 * body can refuse (size, type, answers) runs before the submission is committed to the inbox and the answer sent.
 */
export default async function formSubmissionRoutes(app: App, deps: WebhooksDeps) {
  const { config } = deps
  // Both are encapsulated in this module: the rest of the service stays JSON-only and keeps its own limits.
  await app.register(formbody, { bodyLimit: config.FORM_BODY_LIMIT_BYTES })
  await app.register(rateLimit, {
    global: false,
    // Shared by every instance when Redis is configured; per process otherwise.
    redis: deps.redis ?? undefined,
    nameSpace: 'wa-forms-rl:',
    // A Redis outage must not take the forms down with it: the limits fail open.
    skipOnError: true,
  })
  app.decorateRequest('publicForm', null)
  // One per process: submissions of every form and tenant share its group commits.
  const inbox = new SubmissionInbox(deps.sql, { onError: (err) => deps.log.error({ err }, 'storing form submissions failed') })
  // The pixel's views go through the event intake's inbox (group commit, enrichment in the worker).
  const events = new EventInbox(deps.sql, { onError: (err) => deps.log.error({ err }, 'storing form views failed') })

  const minute = 60_000
  // req.ip is the socket address unless TRUST_PROXY names the proxies allowed to set X-Forwarded-For.
  const perIp = app.createRateLimit({ max: config.FORM_RATE_LIMIT_PER_IP_PER_MINUTE, timeWindow: minute, keyGenerator: (req) => `ip:${req.ip}` })
  const perForm = app.createRateLimit({ max: config.FORM_RATE_LIMIT_PER_FORM_PER_MINUTE, timeWindow: minute, keyGenerator: (req) => `form:${publicKeyOf(req)}` })
  // Preflights and thank-you pages cost a lookup too, but must not eat into the submission budget.
  const perIpPages = app.createRateLimit({ max: config.FORM_RATE_LIMIT_PER_IP_PER_MINUTE * 4, timeWindow: minute, keyGenerator: (req) => `pages:${req.ip}` })

  // Before the CORS plugin's hook (registered after this one), for every route here: the limits, then the form,
  // whose allowedOrigins the plugin's per-request options come from.
  app.addHook('onRequest', async (req, reply) => {
    for (const limit of req.method === 'POST' ? [perIp, perForm] : [perIpPages]) {
      const state = await limit(req)
      if (!state.isAllowed && state.isExceeded) {
        const retry = String(Math.max(1, state.ttlInSeconds))
        throw new AppError('RATE_LIMITED', `too many submissions; retry in ${retry} s`, { headers: { 'retry-after': retry } })
      }
    }
    // Every answer here depends on the Origin header, so caches must key on it (errors included).
    reply.header('vary', 'Origin')
    const form = await loadPublicForm(deps.sql, publicKeyOf(req))
    // Server-side: a plain HTML post is not stopped by CORS, so a browser origin the form does not list is refused
    // here, preflight or not. Requests without Origin (servers, curl) are not browsers and pass.
    if (!originAllowed(form, req.headers.origin)) {
      throw new AppError('FORBIDDEN', "this page's origin may not post this form; add it to the form's allowedOrigins")
    }
    req.publicForm = form
  })
  // Echoes only an origin the form lists (never "*"), adds Vary: Origin, and answers preflights itself (204).
  await app.register(cors, {
    delegator: (req, done) => done(null, {
      origin: req.publicForm?.definition.allowedOrigins ?? false,
      methods: 'POST',
      allowedHeaders: 'content-type, accept',
      maxAge: 600,
    }),
  })

  app.post('/:publicKey/submissions', {
    config: { access: 'public' },
    bodyLimit: config.FORM_BODY_LIMIT_BYTES,
    schema: {
      tags: ['forms'],
      summary: 'Submit a lead form (JSON or application/x-www-form-urlencoded). Stored before the answer, processed asynchronously; an HTML form post is redirected (303).',
      params: PublicKeyParams,
      body: SubmissionBody,
      response: { 201: SubmissionAccepted },
    },
  }, async (req, reply) => {
    const { stored: _stored, ...accepted } = await acceptSubmission(inbox, req.publicForm!, req.body, {
      ip: req.ip, userAgent: req.headers['user-agent'] ?? null, referer: req.headers.referer ?? null, requestId: req.id,
      linkVisitorId: visitorIdFromCookie(req.headers.cookie),
    })
    countSubmissionAcknowledged(_stored)
    if (wantsRedirect(req)) return reply.redirect(accepted.redirectUrl ?? `./thanks`, 303)
    return reply.code(201).send(accepted)
  })

  // form.viewed by pixel: `<img src="…/forms/<key>/view.gif?aid=<anonymousId>">` on the page showing the form. No
  // cookies; limited per IP like the other pages; crawlers and link-preview fetchers are answered but not counted.
  app.get('/:publicKey/view.gif', {
    config: { access: 'public' },
    schema: {
      tags: ['forms'],
      summary: "Count a view of the form (a 1×1 GIF): one per visitor, form and day, or one per `vid` when the page sends one.",
      params: PublicKeyParams,
      querystring: PixelQuery,
    },
  }, async (req, reply) => {
    const userAgent = req.headers['user-agent']
    if (!isbot(userAgent ?? '')) {
      await events.store({ tenantId: req.publicForm!.tenantId, source: 'site', events: [formViewedEvent({
        tenantId: req.publicForm!.tenantId, formId: req.publicForm!.id, anonymousId: req.query.aid, viewId: req.query.vid, at: new Date(),
        userAgent, pageUrl: req.headers.referer, locale: req.headers['accept-language']?.split(',')[0]?.split(';')[0]?.trim(),
      })] })
    }
    return reply
      .type('image/gif')
      .header('cache-control', 'no-store, max-age=0')
      // Loaded by the business's pages, from their origin.
      .header('cross-origin-resource-policy', 'cross-origin')
      .send(PIXEL)
  })

  app.get('/:publicKey/thanks', {
    config: { access: 'public' },
    schema: { hide: true, params: PublicKeyParams },
  }, async (req, reply) => {
    const message = req.publicForm!.definition.successMessage ?? 'Thank you! We received your details.'
    return reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', "default-src 'none'")
      .send(`<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>Thank you</title></head><body><p>${escapeHtml(message)}</p></body></html>`)
  })
}

/** A browser's plain HTML form post (not a script asking for JSON) is answered with a page, via 303. */
function wantsRedirect(req: FastifyRequest): boolean {
  const type = (req.headers['content-type'] ?? '').toLowerCase()
  return type.startsWith('application/x-www-form-urlencoded') && !/application\/json/i.test(req.headers.accept ?? '')
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
