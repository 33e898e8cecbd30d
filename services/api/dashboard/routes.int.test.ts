import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../../lib/http/create-server.js'
import { buildTestApi } from '../../../test/apps.js'
import { useTestDatabase } from '../../../test/db.js'

const FILES = [
  ['/dashboard', 'text/html'],
  ['/dashboard/', 'text/html'],
  ['/dashboard/app.js', 'text/javascript'],
  ['/dashboard/api.js', 'text/javascript'],
  ['/dashboard/charts.js', 'text/javascript'],
  ['/dashboard/format.js', 'text/javascript'],
  ['/dashboard/style.css', 'text/css'],
  ['/dashboard/vendor/uplot.esm.js', 'text/javascript'],
  ['/dashboard/vendor/uplot.min.css', 'text/css'],
] as const

describe('the dashboard files', () => {
  const db = useTestDatabase()
  let app: App
  beforeAll(async () => { app = await buildTestApi(db.current) })
  afterAll(async () => { await app?.close() })

  it.each(FILES)('serves %s as %s without a key, under the page\'s security headers', async (url, type) => {
    const res = await app.inject({ method: 'GET', url })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toContain(type)
    expect(res.headers['content-security-policy']).toContain("default-src 'none'")
    expect(res.headers['content-security-policy']).toContain("script-src 'self'")
    expect(res.headers['x-content-type-options']).toBe('nosniff')
    expect(res.headers['x-frame-options']).toBe('DENY')
    expect(res.body.length).toBeGreaterThan(100)
  })

  it('serves the chart library from node_modules: uPlot as an ES module', async () => {
    const res = await app.inject({ method: 'GET', url: '/dashboard/vendor/uplot.esm.js' })
    expect(res.body).toMatch(/export \{[^}]*uPlot as default/)
  })

  it('has no inline script, no inline style and nothing from another origin', async () => {
    const html = (await app.inject({ method: 'GET', url: '/dashboard' })).body
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script type="module" src="/dashboard/app.js">'])
    expect(html).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=/i)
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i)
    for (const file of ['app.js', 'api.js', 'charts.js', 'format.js']) {
      const js = (await app.inject({ method: 'GET', url: `/dashboard/${file}` })).body
      // Every import is one of the page's own files; the key is read from session storage only.
      for (const [, from] of js.matchAll(/from '([^']+)'/g)) expect(from!, file).toMatch(/^(\.\/[a-z-]+\.js|\/dashboard\/vendor\/uplot\.esm\.js)$/)
      expect(js, file).not.toMatch(/localStorage|document\.cookie|[?&]key=/)
    }
  })

  it.each([
    ['/dashboard/nope.js'],
    ['/dashboard/../package.json'],
    ['/dashboard/vendor/../../package.json'],
    ['/dashboard/%2e%2e/package.json'],
    ['/dashboard/vendor/uPlot.cjs.js'],
    ['/dashboard/public/index.html'],
  ])('answers %s with a 404 in the one error shape', async (url) => {
    const res = await app.inject({ method: 'GET', url })
    expect(res.statusCode).toBe(404)
    expect(res.json()).toMatchObject({ error: { code: 'NOT_FOUND', requestId: expect.any(String) } })
  })

  it('answers a write to the page with an error, not the page', async () => {
    const res = await app.inject({ method: 'POST', url: '/dashboard', payload: { apiKey: 'wak_x' } })
    expect(res.statusCode).toBe(404)
    expect(res.json()).toMatchObject({ error: { code: 'NOT_FOUND' } })
  })
})
