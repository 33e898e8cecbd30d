import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type { App } from '../../../lib/http/create-server.js'

const require = createRequire(import.meta.url)
const here = (name: string) => fileURLToPath(new URL(`./public/${name}`, import.meta.url))

/**
 * The admin dashboard's files: a fixed list, read once at start. Nothing is looked up from the request's path, so
 * no URL can reach another file (no traversal to guard against), and the chart library comes from node_modules,
 * never from a CDN. The page calls only the public API with the key the person typed (session storage).
 */
const FILES: Record<string, { file: string; type: string }> = {
  '/dashboard': { file: here('index.html'), type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { file: here('app.js'), type: 'text/javascript; charset=utf-8' },
  '/dashboard/api.js': { file: here('api.js'), type: 'text/javascript; charset=utf-8' },
  '/dashboard/charts.js': { file: here('charts.js'), type: 'text/javascript; charset=utf-8' },
  '/dashboard/format.js': { file: here('format.js'), type: 'text/javascript; charset=utf-8' },
  '/dashboard/style.css': { file: here('style.css'), type: 'text/css; charset=utf-8' },
  '/dashboard/vendor/uplot.esm.js': { file: require.resolve('uplot/dist/uPlot.esm.js'), type: 'text/javascript; charset=utf-8' },
  '/dashboard/vendor/uplot.min.css': { file: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
}

/**
 * Only this origin's scripts, styles and API; no inline script or style element, no framing, no form posting
 * anywhere (the sign-in form is handled by script, so a key can never land in a URL), no referrer.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "font-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
].join('; ')

const SECURITY_HEADERS = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  // Small files that change with a deploy: revalidate each time rather than serve a stale page against a new API.
  'cache-control': 'no-cache',
}

export default async function dashboardRoutes(app: App) {
  for (const [url, { file, type }] of Object.entries(FILES)) {
    const body = readFileSync(file)
    const routes = url === '/dashboard' ? [url, '/dashboard/'] : [url]
    for (const path of routes) {
      app.get(path, { config: { access: 'public' }, schema: { hide: true } }, async (_req, reply) => {
        void reply.headers(SECURITY_HEADERS).type(type)
        return body
      })
    }
  }
}
