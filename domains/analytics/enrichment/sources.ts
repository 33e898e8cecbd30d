/**
 * Known referrer hosts: the source name we report and its category. The categories follow GA4's source
 * categories (https://support.google.com/analytics/answer/9756891), which Plausible also uses
 * (plausible/analytics lib/plausible/ingestion/acquisition.ex), narrowed to our channels, plus WhatsApp as its own.
 *
 * Keys are hosts without `www.`; a referrer matches its longest known suffix (`mail.google.com` before
 * `google.com`). Country variants (`google.com.br`, `yandex.ru`) are folded to `.com` before a second look-up.
 * Android apps send `android-app://<package>` as the referrer, so their package names are keys too.
 */
export type SourceCategory = 'search' | 'social' | 'email' | 'whatsapp'

export type KnownSource = { name: string; category: SourceCategory }

const entries: Array<[SourceCategory, string, string[]]> = [
  // search
  ['search', 'google', ['google.com', 'com.google.android.googlequicksearchbox', 'com.google.android.gm.lite']],
  ['search', 'bing', ['bing.com', 'cn.bing.com']],
  ['search', 'duckduckgo', ['duckduckgo.com']],
  ['search', 'yahoo', ['yahoo.com', 'search.yahoo.com', 'yahoo.co.jp']],
  ['search', 'yandex', ['yandex.com', 'ya.ru']],
  ['search', 'baidu', ['baidu.com']],
  ['search', 'ecosia', ['ecosia.org']],
  ['search', 'brave', ['search.brave.com']],
  ['search', 'naver', ['naver.com']],
  ['search', 'sogou', ['sogou.com']],
  ['search', 'qwant', ['qwant.com']],
  ['search', 'startpage', ['startpage.com']],
  ['search', 'ask', ['ask.com']],
  // social
  ['social', 'facebook', ['facebook.com', 'fb.com', 'fb.me', 'messenger.com', 'com.facebook.katana', 'com.facebook.orca', 'com.facebook.lite']],
  ['social', 'instagram', ['instagram.com', 'com.instagram.android']],
  ['social', 'twitter', ['t.co', 'twitter.com', 'x.com', 'com.twitter.android']],
  ['social', 'linkedin', ['linkedin.com', 'lnkd.in', 'com.linkedin.android']],
  ['social', 'tiktok', ['tiktok.com', 'com.zhiliaoapp.musically', 'com.ss.android.ugc.trill']],
  ['social', 'youtube', ['youtube.com', 'youtu.be', 'com.google.android.youtube']],
  ['social', 'pinterest', ['pinterest.com', 'pin.it']],
  ['social', 'reddit', ['reddit.com', 'redd.it']],
  ['social', 'threads', ['threads.net', 'threads.com']],
  ['social', 'telegram', ['t.me', 'telegram.org', 'web.telegram.org', 'org.telegram.messenger']],
  ['social', 'kwai', ['kwai.com']],
  ['social', 'snapchat', ['snapchat.com']],
  ['social', 'discord', ['discord.com', 'discord.gg']],
  ['social', 'vk', ['vk.com']],
  ['social', 'bluesky', ['bsky.app']],
  ['social', 'quora', ['quora.com']],
  // email: webmail hosts and mail apps
  ['email', 'gmail', ['mail.google.com', 'com.google.android.gm', 'inbox.google.com']],
  ['email', 'outlook', ['outlook.live.com', 'outlook.office.com', 'outlook.office365.com', 'mail.live.com', 'com.microsoft.office.outlook']],
  ['email', 'yahoo mail', ['mail.yahoo.com', 'com.yahoo.mobile.client.android.mail']],
  ['email', 'icloud mail', ['icloud.com']],
  ['email', 'proton mail', ['mail.proton.me', 'proton.me']],
  ['email', 'zoho mail', ['mail.zoho.com']],
  ['email', 'yandex mail', ['mail.yandex.com', 'mail.yandex.ru']],
  ['email', 'uol mail', ['email.uol.com.br']],
  ['email', 'terra mail', ['mail.terra.com.br']],
  ['email', 'gmx', ['gmx.net', 'gmx.com', 'mail.gmx.com']],
  // whatsapp: links opened from WhatsApp, its short links and its link shim
  ['whatsapp', 'whatsapp', ['whatsapp.com', 'api.whatsapp.com', 'web.whatsapp.com', 'wa.me', 'l.wl.co', 'com.whatsapp', 'com.whatsapp.w4b']],
]

const BY_HOST = new Map<string, KnownSource>()
for (const [category, name, hosts] of entries) for (const host of hosts) BY_HOST.set(host, { name, category })

/** utm_source spellings people use for the sources above (Plausible resolves these aliases too). */
const ALIASES = new Map<string, string>([
  ['fb', 'facebook'], ['ig', 'instagram'], ['x', 'twitter'], ['tw', 'twitter'], ['yt', 'youtube'], ['wa', 'whatsapp'],
  ['whatsapp business', 'whatsapp'], ['adwords', 'google'], ['google ads', 'google'], ['googleads', 'google'],
])
const BY_NAME = new Map<string, KnownSource>()
for (const [category, name] of entries) BY_NAME.set(name, { name, category })

const SECOND_LEVEL = new Set(['com', 'co', 'net', 'org', 'ne', 'or', 'ac', 'gov', 'edu'])
const GENERIC_TLD = new Set(['com', 'net', 'org'])

/** The known source of a host (lowercase, without `www.`), or null. */
export function sourceForHost(host: string): KnownSource | null {
  return bySuffix(host) ?? bySuffix(foldCountry(host))
}

/** The known source a utm_source names (`facebook`, `fb`, `l.facebook.com`), or null. */
export function sourceForUtm(utmSource: string): KnownSource | null {
  const key = utmSource.toLowerCase()
  const named = BY_NAME.get(ALIASES.get(key) ?? key)
  return named ?? (key.includes('.') ? sourceForHost(key.replace(/^www\./, '')) : null)
}

function bySuffix(host: string): KnownSource | null {
  let at = 0
  // Walk `a.b.c`, `b.c`, `c`: the first (longest) known suffix wins.
  for (;;) {
    const hit = BY_HOST.get(at === 0 ? host : host.slice(at))
    if (hit) return hit
    const dot = host.indexOf('.', at)
    if (dot < 0) return null
    at = dot + 1
  }
}

/** `google.com.br` → `google.com`, `yandex.ru` → `yandex.com`: search engines and networks live on many ccTLDs. */
function foldCountry(host: string): string {
  const labels = host.split('.')
  if (labels.length < 2) return host
  const last = labels[labels.length - 1]!
  if (last.length === 2) {
    labels.pop()
    if (labels.length >= 2 && SECOND_LEVEL.has(labels[labels.length - 1]!)) labels.pop()
  } else if (GENERIC_TLD.has(last)) {
    labels.pop()
  } else {
    return host
  }
  labels.push('com')
  return labels.join('.')
}
