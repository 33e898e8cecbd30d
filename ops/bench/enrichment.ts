/**
 * What enriching an event costs (domains/analytics/enrichment), against baselines in the same run: no database,
 * no network, bounded in time.
 *
 * The inputs are a realistic mix (desktop and phone browsers, in-app browsers, bots; referrers of every channel;
 * landing URLs with and without UTM and click ids; locales and phones). Baselines over the same inputs:
 * - `new URL` only: parsing the page URL and the referrer, the least any classification must do;
 * - ua-parser-js only: the user-agent parse alone, to show where enrichEvent's time goes.
 * Rounds alternate (A B C A B C …) so load from elsewhere on the machine hits each alike; best round reported.
 *
 * Environment: BENCH_SECONDS (per round, default 0.4), BENCH_ROUNDS (3).
 */
import { UAParser } from 'ua-parser-js'
import { enrichEvent } from '../../domains/analytics/enrichment/enrich.js'
import { Enrichment } from '../../domains/analytics/enrichment/schemas.js'

const SECONDS = Math.min(Number(process.env.BENCH_SECONDS ?? 0.4), 5)
const ROUNDS = Math.min(Number(process.env.BENCH_ROUNDS ?? 3), 10)

const agents = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 305.0.0.22.109 (iPhone14,5; iOS 16_6; pt_BR; pt; scale=3.00; 1170x2532; 532277904)',
  'Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/442.0.0.33.113;]',
  'Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  'curl/8.4.0',
]
const referrers = [undefined, 'https://www.google.com.br/', 'https://l.instagram.com/', 'https://l.facebook.com/', 'https://mail.google.com/', 'https://wa.me/5511987654321', 'https://blog.somebody.net/post/1', 'https://loja.example.com.br/cart', 'not a url']
const queries = ['', '?utm_source=instagram&utm_medium=paid_social&utm_campaign=verao', '?gclid=Cj0KCQiA', '?ctwa_clid=ARAkLkA8rmlFeiCktEJQ', '?utm_source=newsletter&utm_medium=email', '?fbclid=IwAR0abc']
const locales = ['pt-BR', 'en-US', 'es-MX', undefined]
const phones = [undefined, undefined, '+5511987654321', '+525512345678']

const inputs = Array.from({ length: 1000 }, (_, i) => ({
  userAgent: agents[i % agents.length],
  referrer: referrers[(i * 7) % referrers.length],
  pageUrl: `https://loja.example.com.br/produto/${i % 50}${queries[(i * 3) % queries.length]}`,
  locale: locales[i % locales.length],
  phoneE164: phones[(i * 5) % phones.length],
}))

// A benchmark of wrong answers measures nothing: every output must be a valid Enrichment.
for (const input of inputs) Enrichment.parse(enrichEvent(input))

let sink = 0
const candidates: Record<string, (input: (typeof inputs)[number]) => void> = {
  'new URL only (baseline)': (input) => {
    try { sink += new URL(input.pageUrl).search.length } catch { /* same as enrichEvent: garbage is not an error */ }
    try { if (input.referrer) sink += new URL(input.referrer).hostname.length } catch { /* idem */ }
  },
  'ua-parser-js only': (input) => { sink += new UAParser(input.userAgent).getResult().browser.name?.length ?? 0 },
  enrichEvent: (input) => { sink += enrichEvent(input).channel.length },
}

/** Events per second over one round of about SECONDS. */
function round(fn: (input: (typeof inputs)[number]) => void): number {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(SECONDS * 1e9))
  const start = process.hrtime.bigint()
  let events = 0
  while (process.hrtime.bigint() < deadline) {
    for (const input of inputs) fn(input)
    events += inputs.length
  }
  return events / (Number(process.hrtime.bigint() - start) / 1e9)
}

for (const fn of Object.values(candidates)) round(fn) // warm up the JIT before measuring anything
const best: Record<string, number> = {}
for (let r = 0; r < ROUNDS; r++) for (const [name, fn] of Object.entries(candidates)) best[name] = Math.max(best[name] ?? 0, round(fn))

const baseline = best['new URL only (baseline)']!
console.log(`\nEnrichment per event, ${inputs.length} mixed inputs, best of ${ROUNDS} rounds of ${SECONDS} s\n`)
console.log(['', 'events/s', 'µs/event', 'vs new URL'].join('  |  '))
for (const [name, perSecond] of Object.entries(best)) {
  console.log([name, Math.round(perSecond).toLocaleString('en-US'), (1e6 / perSecond).toFixed(2), `${(perSecond / baseline).toFixed(3)}×`].join('  |  '))
}
console.log(`\n(checksum ${sink % 1000})`)
