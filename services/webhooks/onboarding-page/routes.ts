import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { App } from '../../../lib/http/create-server.js'

const here = (name: string) => fileURLToPath(new URL(`./public/${name}`, import.meta.url))

/**
 * The onboarding page: a fixed list of files read once at start (no path from the request reaches the disk). It
 * calls only the public onboarding routes, with the session token it takes from the link's fragment (never sent to a
 * server by the browser) and keeps in session storage.
 */
const FILES: Record<string, { file: string; type: string }> = {
  '/onboarding': { file: here('index.html'), type: 'text/html; charset=utf-8' },
  '/onboarding/app.js': { file: here('app.js'), type: 'text/javascript; charset=utf-8' },
  '/onboarding/style.css': { file: here('style.css'), type: 'text/css; charset=utf-8' },
}

export const ONBOARDING_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
].join('; ')

const SECURITY_HEADERS = {
  'content-security-policy': ONBOARDING_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // The page's URL may still hold the token for a moment: never send it on as a referrer.
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cache-control': 'no-cache',
}

export default async function onboardingPageRoutes(app: App) {
  for (const [url, { file, type }] of Object.entries(FILES)) {
    const body = readFileSync(file)
    for (const path of url === '/onboarding' ? [url, '/onboarding/'] : [url]) {
      app.get(path, { config: { access: 'public' }, schema: { hide: true } }, async (_req, reply) => {
        void reply.headers(SECURITY_HEADERS).type(type)
        return body
      })
    }
  }
}
