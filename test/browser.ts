import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { describe, it } from 'vitest'
import { ROOT } from './processes.js'

/** Debian's Chromium (`apt-get install chromium`); playwright-core never downloads a browser. */
export const CHROMIUM = '/usr/bin/chromium'
/** .ci/run sets it: on CI a missing browser fails the run instead of skipping the browser tests. */
export const BROWSER_REQUIRED = process.env.DASHBOARD_BROWSER_REQUIRED === '1'
/** Screenshots and other outputs of the browser tests (git-ignored). */
export const ARTIFACTS = path.join(ROOT, 'test', 'artifacts')
// Without the background-networking flags Chromium keeps trying Google's hosts, which this closed network refuses.
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

const haveChromium = existsSync(CHROMIUM)

/**
 * A browser test's describe(): on a machine without Chromium (and not on CI) it is one skipped test that says why and
 * how to install it, as the issues ask; everywhere else the real tests, which then fail if the browser is missing.
 */
export function describeInChromium(name: string, body: () => void): void {
  if (!haveChromium && !BROWSER_REQUIRED) {
    describe(name, () => {
      it.skip(`did not run: ${CHROMIUM} is missing (install Debian's chromium: apt-get install -y chromium)`, () => {})
    })
    return
  }
  describe(name, body)
}

export interface ChromiumSession { context: BrowserContext; page: Page; close: () => Promise<void> }

/**
 * Headless Chromium with a fresh profile (removed on close) and one page. `userAgent` replaces headless Chromium's own
 * (which names HeadlessChrome, so the product rightly takes it for a bot) where a test plays a person's browser.
 */
export async function openChromium(options: { profilePrefix: string; viewport: { width: number; height: number }; userAgent?: string }): Promise<ChromiumSession> {
  if (!haveChromium) throw new Error(`${CHROMIUM} is missing and DASHBOARD_BROWSER_REQUIRED=1: install Debian's chromium (apt-get install -y chromium)`)
  const profile = await mkdtemp(path.join(tmpdir(), options.profilePrefix))
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: options.viewport, deviceScaleFactor: 1, ...(options.userAgent ? { userAgent: options.userAgent } : {}) })
  const page = context.pages()[0] ?? (await context.newPage())
  return {
    context,
    page,
    close: async () => {
      await context.close()
      await rm(profile, { recursive: true, force: true })
    },
  }
}
