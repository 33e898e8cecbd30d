import { describe, expect, it } from 'vitest'
import { classifyAcquisition } from './referrer.js'

const page = 'https://shop.example.com.br/produto'

describe('classifyAcquisition: referrer alone', () => {
  it.each([
    // direct
    ['no referrer', undefined, null, 'direct'],
    ['an empty referrer', '', null, 'direct'],
    // search
    ['Google', 'https://www.google.com/', 'google', 'search'],
    ["Google's Brazilian domain", 'https://www.google.com.br/', 'google', 'search'],
    ["Google's UK domain", 'https://www.google.co.uk/', 'google', 'search'],
    ["Google's German domain", 'https://www.google.de/', 'google', 'search'],
    ['the Google app on Android', 'android-app://com.google.android.googlequicksearchbox/', 'google', 'search'],
    ['Bing', 'https://www.bing.com/search?q=x', 'bing', 'search'],
    ['DuckDuckGo', 'https://duckduckgo.com/', 'duckduckgo', 'search'],
    ['Yahoo search', 'https://search.yahoo.com/', 'yahoo', 'search'],
    ['Yahoo Brazil', 'https://br.search.yahoo.com/', 'yahoo', 'search'],
    ['Yandex', 'https://yandex.ru/', 'yandex', 'search'],
    ['Baidu', 'https://www.baidu.com/link?url=x', 'baidu', 'search'],
    ['Ecosia', 'https://www.ecosia.org/', 'ecosia', 'search'],
    ['Brave search', 'https://search.brave.com/', 'brave', 'search'],
    // social
    ['Facebook', 'https://www.facebook.com/', 'facebook', 'social'],
    ["Facebook's link shim", 'https://l.facebook.com/', 'facebook', 'social'],
    ["Facebook's mobile link shim", 'https://lm.facebook.com/', 'facebook', 'social'],
    ['the Facebook app on Android', 'android-app://com.facebook.katana/', 'facebook', 'social'],
    ['Instagram', 'https://l.instagram.com/', 'instagram', 'social'],
    ["Twitter's t.co", 'https://t.co/abc', 'twitter', 'social'],
    ['x.com', 'https://x.com/', 'twitter', 'social'],
    ['LinkedIn', 'https://www.linkedin.com/', 'linkedin', 'social'],
    ["LinkedIn's lnkd.in", 'https://lnkd.in/x', 'linkedin', 'social'],
    ['TikTok', 'https://www.tiktok.com/', 'tiktok', 'social'],
    ['YouTube', 'https://m.youtube.com/', 'youtube', 'social'],
    ['youtu.be', 'https://youtu.be/x', 'youtube', 'social'],
    ['Pinterest', 'https://br.pinterest.com/', 'pinterest', 'social'],
    ['Reddit', 'https://old.reddit.com/r/x', 'reddit', 'social'],
    // email
    ['Gmail on the web', 'https://mail.google.com/', 'gmail', 'email'],
    ['the Gmail app on Android', 'android-app://com.google.android.gm/', 'gmail', 'email'],
    ['Outlook on the web', 'https://outlook.live.com/', 'outlook', 'email'],
    ['Office 365 Outlook', 'https://outlook.office.com/', 'outlook', 'email'],
    ['Yahoo Mail', 'https://mail.yahoo.com/', 'yahoo mail', 'email'],
    // whatsapp
    ['wa.me', 'https://wa.me/5511987654321', 'whatsapp', 'whatsapp'],
    ['api.whatsapp.com', 'https://api.whatsapp.com/send?phone=1', 'whatsapp', 'whatsapp'],
    ['WhatsApp Web', 'https://web.whatsapp.com/', 'whatsapp', 'whatsapp'],
    ["WhatsApp's link shim l.wl.co", 'https://l.wl.co/l?u=https://shop.example.com.br', 'whatsapp', 'whatsapp'],
    ['the WhatsApp app on Android', 'android-app://com.whatsapp/', 'whatsapp', 'whatsapp'],
    ['the WhatsApp Business app on Android', 'android-app://com.whatsapp.w4b/', 'whatsapp', 'whatsapp'],
    // referral
    ['a blog', 'https://blog.somebody.net/post/1', 'blog.somebody.net', 'referral'],
    ['a blog with www', 'https://www.somebody.org/', 'somebody.org', 'referral'],
    ["a look-alike of Google's host", 'https://google.example.net/', 'google.example.net', 'referral'],
    ['a host ending like a known one but not it', 'https://notfacebook.com/', 'notfacebook.com', 'referral'],
  ])('classifies %s', (_, referrer, source, channel) => {
    const result = classifyAcquisition({ referrer, pageUrl: page })
    expect({ source: result.source, channel: result.channel }).toEqual({ source, channel })
  })

  it('keeps only the host of a referrer, never its path or query', () => {
    const result = classifyAcquisition({ referrer: 'https://blog.somebody.net/post?email=ana@example.com', pageUrl: page })
    expect(result.referrerHost).toBe('blog.somebody.net')
    expect(JSON.stringify(result)).not.toContain('ana@example.com')
  })
})

describe('classifyAcquisition: self-referrals', () => {
  it.each([
    ['the same host', 'https://shop.example.com.br/cart'],
    ['the same host with www', 'https://www.shop.example.com.br/'],
    ['a subdomain of the page host', 'https://checkout.shop.example.com.br/'],
    ['the parent domain of the page host', 'https://example.com.br/'],
  ])('counts a referrer on %s as internal and direct', (_, referrer) => {
    const result = classifyAcquisition({ referrer, pageUrl: page })
    expect(result).toMatchObject({ internal: true, channel: 'direct', source: null })
  })

  it('still lets UTM on the landing URL decide for an internal referrer', () => {
    const result = classifyAcquisition({ referrer: 'https://shop.example.com.br/', pageUrl: `${page}?utm_source=newsletter&utm_medium=email` })
    expect(result).toMatchObject({ internal: true, channel: 'email', source: 'newsletter' })
  })
})

describe('classifyAcquisition: UTM overrides the referrer', () => {
  it.each([
    ['utm_medium=cpc from Google', 'https://www.google.com/', '?utm_source=google&utm_medium=cpc', 'google', 'paid'],
    ['utm_medium=ppc', undefined, '?utm_source=bing&utm_medium=ppc', 'bing', 'paid'],
    ['utm_medium=paid_social from Instagram', 'https://l.instagram.com/', '?utm_source=instagram&utm_medium=paid_social', 'instagram', 'paid'],
    ['utm_medium=paid-search', undefined, '?utm_source=google&utm_medium=paid-search', 'google', 'paid'],
    ['utm_medium=display', undefined, '?utm_source=gdn&utm_medium=display', 'gdn', 'paid'],
    ['utm_medium=email from Facebook', 'https://www.facebook.com/', '?utm_source=mailchimp&utm_medium=email', 'mailchimp', 'email'],
    ['utm_medium=newsletter', undefined, '?utm_source=weekly&utm_medium=newsletter', 'weekly', 'email'],
    ['utm_medium=e-mail', undefined, '?utm_source=crm&utm_medium=e-mail', 'crm', 'email'],
    ['utm_medium=social from a blog', 'https://blog.somebody.net/', '?utm_source=bio&utm_medium=social', 'bio', 'social'],
    ['utm_medium=organic', undefined, '?utm_source=google&utm_medium=organic', 'google', 'search'],
    ['utm_medium=whatsapp', undefined, '?utm_source=status&utm_medium=whatsapp', 'status', 'whatsapp'],
    ['utm_source=whatsapp alone', undefined, '?utm_source=whatsapp', 'whatsapp', 'whatsapp'],
    ['utm_source=facebook alone', 'https://www.google.com/', '?utm_source=facebook', 'facebook', 'social'],
    ['utm_source=fb (an alias)', undefined, '?utm_source=fb', 'fb', 'social'],
    ['utm_source=ig with utm_medium=story', undefined, '?utm_source=ig&utm_medium=story', 'ig', 'social'],
    ['utm_source=newsletter alone', undefined, '?utm_source=newsletter', 'newsletter', 'email'],
    ['utm_medium=referral', 'https://www.google.com/', '?utm_source=partner&utm_medium=referral', 'partner', 'referral'],
    ['an unknown utm_source', 'https://www.google.com/', '?utm_source=flyer', 'flyer', 'referral'],
    ['only utm_campaign, from Facebook', 'https://l.facebook.com/', '?utm_campaign=black-friday', 'facebook', 'social'],
    ['utm_source in capitals', undefined, '?utm_source=Facebook&utm_medium=CPC', 'facebook', 'paid'],
  ])('classifies %s', (_, referrer, query, source, channel) => {
    const result = classifyAcquisition({ referrer, pageUrl: `${page}${query}` })
    expect({ source: result.source, channel: result.channel }).toEqual({ source, channel })
  })

  it('reads all five UTM fields from the landing URL, decoded', () => {
    const result = classifyAcquisition({ pageUrl: `${page}?utm_source=google&utm_medium=cpc&utm_campaign=Black%20Friday&utm_term=t%C3%AAnis&utm_content=banner+1` })
    expect(result.utm).toEqual({ source: 'google', medium: 'cpc', campaign: 'Black Friday', term: 'tênis', content: 'banner 1' })
  })

  it('prefers explicit UTM fields over the landing URL, field by field', () => {
    const result = classifyAcquisition({ pageUrl: `${page}?utm_source=google&utm_medium=cpc&utm_campaign=url`, utm: { source: 'newsletter', medium: 'email' } })
    expect(result.utm).toMatchObject({ source: 'newsletter', medium: 'email', campaign: 'url' })
    expect(result.channel).toBe('email')
  })

  it('uses explicit UTM without any landing URL', () => {
    expect(classifyAcquisition({ utm: { source: 'instagram', medium: 'cpc' } })).toMatchObject({ source: 'instagram', channel: 'paid' })
  })
})

describe('classifyAcquisition: ad click ids', () => {
  it.each([
    ['gclid from Google', 'https://www.google.com/', '?gclid=Cj0KCQ', 'google', 'gclid'],
    ['gclid without a referrer', undefined, '?gclid=Cj0KCQ', 'google', 'gclid'],
    ['gbraid (iOS Google Ads)', undefined, '?gbraid=0AAAAA', 'google', 'gbraid'],
    ['msclkid', 'https://www.bing.com/', '?msclkid=abc', 'bing', 'msclkid'],
    ['ttclid', undefined, '?ttclid=E.C.P', 'tiktok', 'ttclid'],
  ])('counts %s as paid', (_, referrer, query, source, param) => {
    const result = classifyAcquisition({ referrer, pageUrl: `${page}${query}` })
    expect(result).toMatchObject({ source, channel: 'paid', clickId: { param } })
  })

  it('counts an ad click id as paid even when utm_medium says social', () => {
    expect(classifyAcquisition({ pageUrl: `${page}?utm_source=instagram&utm_medium=social&ttclid=x` })).toMatchObject({ source: 'instagram', channel: 'paid' })
  })

  // Meta adds fbclid to unpaid link clicks too: it names the source and is kept, but only UTM can say "paid".
  it.each([
    ['from Facebook', 'https://l.facebook.com/', '?fbclid=IwAR0', 'social'],
    ['without a referrer (in-app browsers drop it)', undefined, '?fbclid=IwAR0', 'social'],
  ])('keeps fbclid %s without calling the visit paid', (_, referrer, query, channel) => {
    expect(classifyAcquisition({ referrer, pageUrl: `${page}${query}` })).toMatchObject({ source: 'facebook', channel, clickId: { param: 'fbclid' } })
  })

  it('counts fbclid as paid when UTM says so', () => {
    expect(classifyAcquisition({ pageUrl: `${page}?utm_source=facebook&utm_medium=paid_social&fbclid=x` })).toMatchObject({ source: 'facebook', channel: 'paid' })
  })

  it('counts a click-to-WhatsApp ad (ctwa_clid) as whatsapp, keeping its click id', () => {
    const result = classifyAcquisition({ referrer: 'https://l.facebook.com/', pageUrl: `${page}?ctwa_clid=ARAkLkA8rmlFeiCktEJQ&utm_medium=cpc` })
    expect(result).toMatchObject({ channel: 'whatsapp', source: 'facebook', clickId: { param: 'ctwa_clid', value: 'ARAkLkA8rmlFeiCktEJQ' } })
  })

  it('ignores an empty click id', () => {
    expect(classifyAcquisition({ pageUrl: `${page}?gclid=` })).toMatchObject({ channel: 'direct', clickId: null })
  })
})

describe('classifyAcquisition: garbage', () => {
  it.each([
    ['a referrer that is not a URL', { referrer: 'not a url', pageUrl: page }],
    ['a page URL that is not a URL', { referrer: undefined, pageUrl: '::::' }],
    ['numbers', { referrer: 42, pageUrl: 7 }],
    ['objects', { referrer: {}, pageUrl: [], utm: 'utm_source=x' }],
    ['UTM values of the wrong type', { utm: { source: 5, medium: null, campaign: {} } }],
    ['a javascript: referrer', { referrer: 'javascript:alert(1)' }],
    ['a referrer of the null origin', { referrer: 'null' }],
  ])('answers direct for %s', (_, input) => {
    expect(classifyAcquisition(input)).toMatchObject({ channel: 'direct', source: null })
  })

  it('caps UTM values at 200 characters', () => {
    const result = classifyAcquisition({ pageUrl: `${page}?utm_campaign=${'a'.repeat(5000)}`, utm: { source: 'b'.repeat(5000) } })
    expect(result.utm.campaign).toHaveLength(200)
    expect(result.utm.source).toHaveLength(200)
    expect(result.source).toHaveLength(200)
  })

  it('reads a huge page URL only up to its first 2048 characters', () => {
    const result = classifyAcquisition({ pageUrl: `${page}?utm_source=google&utm_medium=cpc&pad=${'x'.repeat(1_000_000)}` })
    expect(result).toMatchObject({ source: 'google', channel: 'paid' })
  })
})
