import { describe, expect, it } from 'vitest'
import { parseUserAgent } from './user-agent.js'

// Real user agents as browsers, apps and crawlers send them (2023-2024 versions).
const cases: Array<{ name: string; ua: string; browser: string | null; browserVersion?: string; os: string | null; osVersion?: string; device: string; bot?: boolean }> = [
  { name: 'Chrome on Windows 10', ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36', browser: 'Chrome', browserVersion: '120.0.0.0', os: 'Windows', osVersion: '10', device: 'desktop' },
  { name: 'Chrome on macOS', ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36', browser: 'Chrome', os: 'Mac OS', osVersion: '10.15.7', device: 'desktop' },
  { name: 'Safari on macOS', ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15', browser: 'Safari', browserVersion: '17.1', os: 'Mac OS', device: 'desktop' },
  { name: 'Firefox on Linux', ua: 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0', browser: 'Firefox', browserVersion: '121.0', os: 'Linux', device: 'desktop' },
  { name: 'Firefox on Windows', ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0', browser: 'Firefox', browserVersion: '120.0', os: 'Windows', device: 'desktop' },
  { name: 'Edge on Windows', ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0', browser: 'Edge', browserVersion: '120.0.0.0', os: 'Windows', device: 'desktop' },
  { name: 'Chrome on a Chromebook', ua: 'Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36', browser: 'Chrome', os: 'Chromium OS', device: 'desktop' },
  { name: 'Safari on an iPhone', ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1', browser: 'Mobile Safari', browserVersion: '17.1.2', os: 'iOS', osVersion: '17.1.2', device: 'mobile' },
  { name: 'Chrome on an iPhone', ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1', browser: 'Chrome', os: 'iOS', osVersion: '17.2', device: 'mobile' },
  { name: 'Chrome on an Android phone (reduced UA)', ua: 'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36', browser: 'Chrome', os: 'Android', osVersion: '10', device: 'mobile' },
  { name: 'Samsung Internet on a Galaxy phone', ua: 'Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36', browser: 'Samsung Internet', browserVersion: '23.0', os: 'Android', osVersion: '13', device: 'mobile' },
  { name: 'Firefox on an Android phone', ua: 'Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0', browser: 'Firefox', os: 'Android', osVersion: '14', device: 'mobile' },
  { name: 'Safari on an iPad', ua: 'Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1', browser: 'Mobile Safari', os: 'iOS', osVersion: '17.1', device: 'tablet' },
  { name: 'Chrome on a Galaxy Tab', ua: 'Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36', browser: 'Chrome', os: 'Android', osVersion: '13', device: 'tablet' },
  { name: 'Chrome on a Galaxy Tab A (Android 11)', ua: 'Mozilla/5.0 (Linux; Android 11; SM-T500) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36', browser: 'Chrome', os: 'Android', device: 'tablet' },
  { name: "WhatsApp's in-app browser on Android (a WebView with the WhatsApp token)", ua: 'Mozilla/5.0 (Linux; Android 12; moto g(60)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 WhatsApp/2.23.24.76', browser: 'Chrome', os: 'Android', osVersion: '12', device: 'mobile' },
  { name: 'an Android WebView', ua: 'Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 Mobile Safari/537.36', browser: 'Chrome WebView', os: 'Android', device: 'mobile' },
  { name: "Facebook's in-app browser on iOS", ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/440.0.0.36.105;FBBV/546424497;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.1;FBSS/3;FBID/phone;FBLC/pt_BR;FBOP/5]', browser: 'Facebook', browserVersion: '440.0.0.36.105', os: 'iOS', osVersion: '17.1', device: 'mobile' },
  { name: "Facebook's in-app browser on Android", ua: 'Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/442.0.0.33.113;]', browser: 'Facebook', os: 'Android', device: 'mobile' },
  { name: "Instagram's in-app browser on iOS", ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 305.0.0.22.109 (iPhone14,5; iOS 16_6; pt_BR; pt; scale=3.00; 1170x2532; 532277904)', browser: 'Instagram', browserVersion: '305.0.0.22.109', os: 'iOS', osVersion: '16.6', device: 'mobile' },
  { name: "Instagram's in-app browser on Android", ua: 'Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 Mobile Safari/537.36 Instagram 309.0.0.40.113 Android (33/13; 450dpi; 1080x2177; samsung; SM-A536B; a53x; exynos1280; pt_BR; 536988422)', browser: 'Instagram', os: 'Android', osVersion: '13', device: 'mobile' },
  { name: 'a PlayStation 5', ua: 'Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko)', browser: 'WebKit', os: 'PlayStation', device: 'other' },
  // Bots: crawlers, link-preview fetchers, HTTP libraries.
  { name: 'Googlebot', ua: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', browser: null, os: null, device: 'bot', bot: true },
  { name: 'Googlebot smartphone', ua: 'Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.199 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', browser: 'Chrome', os: 'Android', device: 'bot', bot: true },
  { name: 'Bingbot', ua: 'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)', browser: null, os: null, device: 'bot', bot: true },
  { name: "WhatsApp's link-preview fetcher", ua: 'WhatsApp/2.23.20.0 A', browser: null, os: null, device: 'bot', bot: true },
  { name: "Facebook's link-preview crawler", ua: 'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)', browser: null, os: null, device: 'bot', bot: true },
  { name: 'curl', ua: 'curl/8.4.0', browser: null, os: null, device: 'bot', bot: true },
  { name: 'python-requests', ua: 'python-requests/2.31.0', browser: null, os: null, device: 'bot', bot: true },
  { name: 'headless Chrome', ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36', browser: 'Chrome Headless', os: 'Windows', device: 'bot', bot: true },
]

describe('parseUserAgent', () => {
  it.each(cases)('reads $name as $device', ({ ua, browser, browserVersion, os, osVersion, device, bot }) => {
    const info = parseUserAgent(ua)
    expect(info.browser.name).toBe(browser)
    if (browserVersion) expect(info.browser.version).toBe(browserVersion)
    expect(info.os.name).toBe(os)
    if (osVersion) expect(info.os.version).toBe(osVersion)
    expect(info.device).toBe(device)
    expect(info.isBot).toBe(bot ?? false)
  })

  it.each([
    ['missing', undefined], ['empty', ''], ['blank', '   '], ['a number', 42], ['an object', { ua: 'x' }], ['null', null],
  ])('says nothing about a %s user agent', (_, value) => {
    expect(parseUserAgent(value)).toEqual({ browser: { name: null, version: null }, os: { name: null, version: null }, device: 'other', isBot: false })
  })

  it('reads only the first 512 characters of a huge user agent', () => {
    const chrome = cases[0]!.ua
    const info = parseUserAgent(chrome + ' x'.repeat(500_000))
    expect(info.browser.name).toBe('Chrome')
    expect(info.device).toBe('desktop')
  })

  it('keeps an unrecognised browser-like agent as other, not desktop', () => {
    expect(parseUserAgent('Mozilla/5.0 (SomethingNew) Gecko/20100101').device).toBe('other')
  })

  it('counts an agent that is not a browser at all as a bot, as isbot does', () => {
    expect(parseUserAgent('SomethingNew/1.0').device).toBe('bot')
  })
})

describe('the parsed user-agent cache', () => {
  it('answers a repeated user agent exactly as the first parse did, with a frozen answer no caller can change', () => {
    const ua = 'Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36'
    const first = parseUserAgent(ua)
    const again = parseUserAgent(ua)
    expect(again).toEqual(first)
    expect(again).toMatchObject({ browser: { name: 'Samsung Internet' }, os: { name: 'Android' }, device: 'mobile', isBot: false })
    expect(Object.isFrozen(again) && Object.isFrozen(again.browser) && Object.isFrozen(again.os)).toBe(true)
  })

  it('keeps answering correctly after more distinct user agents than it holds have pushed the first one out', () => {
    const ua = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'
    expect(parseUserAgent(ua)).toMatchObject({ device: 'bot', isBot: true })
    for (let i = 0; i < 2500; i++) parseUserAgent(`Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.${i}.0 Safari/537.36`)
    expect(parseUserAgent(ua)).toMatchObject({ device: 'bot', isBot: true })
    expect(parseUserAgent('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.7.0 Safari/537.36'))
      .toMatchObject({ browser: { name: 'Chrome', version: '120.0.7.0' }, device: 'desktop' })
  })
})
