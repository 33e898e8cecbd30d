import { isbot } from 'isbot'
import { UAParser } from 'ua-parser-js'
import type { DeviceType } from './schemas.js'
import { memoize } from './memo.js'
import { cleanText, MAX_USER_AGENT } from './text.js'

// ua-parser-js 1.x (MIT) reads browser, OS and device; 2.x is AGPL, so we stay on 1.x. It does not tell bots from
// people, so `isbot` (Unlicense, the list Remix and others use) decides that. Neither is a regex list of our own.

export type UserAgentInfo = {
  browser: { name: string | null; version: string | null }
  os: { name: string | null; version: string | null }
  device: DeviceType
  isBot: boolean
}

/** Operating systems that run on desktops and laptops: ua-parser-js leaves device.type empty for them. */
const DESKTOP_OS = new Set(['Windows', 'Mac OS', 'macOS', 'Linux', 'Ubuntu', 'Debian', 'Fedora', 'Chromium OS', 'Chrome OS', 'FreeBSD', 'OpenBSD', 'NetBSD', 'Solaris', 'Arch', 'Mint', 'openSUSE', 'Gentoo', 'CentOS', 'Red Hat', 'Slackware', 'Manjaro', 'Unix'])

const EMPTY: UserAgentInfo = { browser: { name: null, version: null }, os: { name: null, version: null }, device: 'other', isBot: false }

/**
 * Parsed user agents, memoized (memo.ts): parsing one (ua-parser-js and isbot) is the dearest step of enriching an
 * event. Bounded in entries, and each key is at most MAX_USER_AGENT characters.
 */
const parsed = memoize(2000, (ua) => parseUncached(ua))

export function parseUserAgent(value: unknown): UserAgentInfo {
  const ua = cleanText(value, MAX_USER_AGENT)
  return ua ? parsed(ua) : EMPTY
}

function parseUncached(ua: string): UserAgentInfo {
  const result = new UAParser(ua).getResult()
  const bot = isbot(ua)
  const osName = short(result.os.name, 60)
  // Frozen: one cached answer is shared by every event with this user agent.
  return Object.freeze({
    browser: Object.freeze({ name: short(result.browser.name, 60), version: short(result.browser.version, 40) }),
    os: Object.freeze({ name: osName, version: short(result.os.version, 40) }),
    device: bot ? 'bot' : deviceType(result.device.type, osName),
    isBot: bot,
  })
}

function deviceType(type: string | undefined, osName: string | null): DeviceType {
  if (type === 'mobile') return 'mobile'
  if (type === 'tablet') return 'tablet'
  // console, smarttv, wearable, embedded, xr: people, but not a screen our dashboards split out.
  if (type) return 'other'
  return osName && DESKTOP_OS.has(osName) ? 'desktop' : 'other'
}

const short = (value: string | undefined, max: number): string | null => (value ? value.slice(0, max) : null)
