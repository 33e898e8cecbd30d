import { describe, expect, it } from 'vitest'
import { connectableHost, conversationEnd, DEMO_READER_KEY, resolvePlaySettings, webhookEndpoint } from './play-lead-settings.js'

describe('where play-lead finds the product', () => {
  it('follows npm start with no flags: its ports, host and development app secret', () => {
    const s = resolvePlaySettings({}, {})
    expect(s).toMatchObject({
      webhooksUrl: 'http://127.0.0.1:3001/webhooks/whatsapp',
      emulatorUrl: 'http://127.0.0.1:4010',
      api: { url: 'http://127.0.0.1:3000', key: DEMO_READER_KEY },
      appSecret: 'dev-meta-app-secret',
    })
  })

  it('reads the variables npm start reads when they move the services', () => {
    const s = resolvePlaySettings({}, { HOST: '0.0.0.0', WEBHOOKS_PORT: '4001', API_PORT: '4000', WHATSAPP_EMULATOR_PORT: '5010', META_APP_SECRET: 'my-secret' })
    expect(s).toMatchObject({
      webhooksUrl: 'http://127.0.0.1:4001/webhooks/whatsapp',
      emulatorUrl: 'http://127.0.0.1:5010',
      api: { url: 'http://127.0.0.1:4000' },
      appSecret: 'my-secret',
    })
  })

  it('lets PLAY_* variables override those, and flags override everything', () => {
    const env = { WEBHOOKS_PORT: '4001', META_APP_SECRET: 'from-config', PLAY_WEBHOOKS_URL: 'http://10.0.0.5:9000/', PLAY_APP_SECRET: 'from-play', PLAY_EMULATOR_URL: 'http://e:1/' }
    expect(resolvePlaySettings({}, env)).toMatchObject({ webhooksUrl: 'http://10.0.0.5:9000/webhooks/whatsapp', appSecret: 'from-play', emulatorUrl: 'http://e:1' })
    const flagged = resolvePlaySettings({ webhooks: 'http://127.0.0.1:7/webhooks/whatsapp', 'app-secret': 'from-flag', emulator: 'http://127.0.0.1:8', api: 'http://127.0.0.1:9', 'api-key': 'wak_x' }, env)
    expect(flagged).toMatchObject({ webhooksUrl: 'http://127.0.0.1:7/webhooks/whatsapp', appSecret: 'from-flag', emulatorUrl: 'http://127.0.0.1:8', api: { url: 'http://127.0.0.1:9', key: 'wak_x' } })
  })

  it('has no app secret or demo key to offer in production unless given one', () => {
    const s = resolvePlaySettings({}, { NODE_ENV: 'production', SECRETS_KEY: 'a'.repeat(64) })
    expect(s.appSecret).toBe('')
    expect(s.api).toBeNull()
  })

  it('refuses a bad port variable or a bad number flag with one line naming it', () => {
    expect(() => resolvePlaySettings({}, { WEBHOOKS_PORT: 'abc' })).toThrow(/WEBHOOKS_PORT/)
    expect(() => resolvePlaySettings({ 'quiet-ms': 'soon' }, {})).toThrow(/--quiet-ms/)
  })

  it('reaches a server bound to every interface on loopback, and takes a base or full webhook URL', () => {
    expect(connectableHost('0.0.0.0')).toBe('127.0.0.1')
    expect(connectableHost('::')).toBe('[::1]')
    expect(connectableHost('::1')).toBe('[::1]')
    expect(connectableHost('localhost')).toBe('localhost')
    expect(webhookEndpoint('http://h:1//')).toBe('http://h:1/webhooks/whatsapp')
  })
})

describe('when play-lead says the conversation is over', () => {
  it('says so for an ended flow, a handover, or no flow at all, and stays quiet while the bot waits for an answer', () => {
    expect(conversationEnd({ mode: 'bot', state: { status: 'ended' } })).toMatch(/flow has ended/)
    expect(conversationEnd({ mode: 'handed_over', state: { status: 'waiting_answer' } })).toMatch(/handed this conversation to a person/)
    expect(conversationEnd({ mode: 'bot', state: null })).toMatch(/no bot flow/)
    expect(conversationEnd({ mode: 'bot', state: { status: 'waiting_answer' } })).toBeNull()
    expect(conversationEnd(undefined)).toBeNull()
  })
})
