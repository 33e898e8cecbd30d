import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { AppError } from '../../../lib/errors.js'
import type { App } from '../../../lib/http/create-server.js'

const here = (name: string) => fileURLToPath(new URL(`./public/${name}`, import.meta.url))

/** The public key of an assessment as the engine issues it (domains/assessments/service.ts startWebSession). */
export const PUBLIC_KEY = /^ak_[A-Za-z0-9_-]{24}$/

/**
 * The web questionnaire: a fixed list of files read once at start (no path from the request reaches the disk). The
 * page is served at the partner links' web start (ASSESSMENT_WEB_START_PATH, /assessments/{publicKey}/start?link=…)
 * and calls only the public assessment routes; its scripts and styles live under /assessments/page/, which no public
 * key can name (keys start with ak_).
 */
const PAGE = { file: here('index.html'), type: 'text/html; charset=utf-8' }
const ASSETS: Record<string, { file: string; type: string }> = {
  '/assessments/page/app.js': { file: here('app.js'), type: 'text/javascript; charset=utf-8' },
  '/assessments/page/api.js': { file: here('api.js'), type: 'text/javascript; charset=utf-8' },
  '/assessments/page/questions.js': { file: here('questions.js'), type: 'text/javascript; charset=utf-8' },
  '/assessments/page/style.css': { file: here('style.css'), type: 'text/css; charset=utf-8' },
}

/**
 * Only this origin's scripts, styles and API; no inline script or style, no framing, no form posting anywhere (every
 * form is handled by script), and Trusted Types required: the page builds its DOM with createElement/textContent
 * only, so no string can ever become markup (a question's text is the tenant's, an answer is the participant's).
 */
export const ASSESSMENT_PAGE_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'", "require-trusted-types-for 'script'", 'trusted-types',
].join('; ')

const SECURITY_HEADERS = {
  'content-security-policy': ASSESSMENT_PAGE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // The page's address names the partner's link; no third party learns it as a referrer.
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  // Small files that change with a deploy: revalidated each time (the ETag makes that a 304) rather than a stale page
  // against a new API.
  'cache-control': 'no-cache',
}

const PageParams = z.object({ publicKey: z.string().max(200) })
// Other query parameters (a campaign's utm_*) are allowed and ignored; the page reads `link` itself.
const PageQuery = z.object({ link: z.string().max(200).optional() })

interface Served { body: Buffer; type: string; etag: string }
const load = ({ file, type }: { file: string; type: string }): Served => {
  const body = readFileSync(file)
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` }
}

export default async function assessmentPageRoutes(app: App) {
  const send = (served: Served) => async (req: FastifyRequest, reply: FastifyReply) => {
    void reply.headers(SECURITY_HEADERS).header('etag', served.etag)
    if (req.headers['if-none-match'] === served.etag) return reply.code(304).send()
    void reply.type(served.type)
    return served.body
  }

  const page = load(PAGE)
  app.get('/assessments/:publicKey/start', {
    config: { access: 'public' }, schema: { hide: true, params: PageParams, querystring: PageQuery },
  }, async (req, reply) => {
    // A key the engine could never have issued is a 404 now, without a page that would only fail to start.
    if (!PUBLIC_KEY.test(req.params.publicKey)) throw new AppError('NOT_FOUND', 'assessment not found')
    return send(page)(req, reply)
  })
  for (const [url, file] of Object.entries(ASSETS)) {
    const served = load(file)
    app.get(url, { config: { access: 'public' }, schema: { hide: true } }, send(served))
  }
}
