import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { metaSignature } from './signature.js'

/**
 * Play a lead from the terminal: every line typed is delivered to our webhooks service as an inbound WhatsApp text
 * message (the envelope Meta sends, signed with the app secret), and whatever the business sends back to this wa_id
 * through the emulator is printed. Buttons and list rows are numbered: type the number (or the exact title or id) to
 * tap it.
 *
 *   tsx ops/emulators/play-lead.ts --wa-id 5511988887777 --name "Ana" --app-secret dev-secret
 *
 * Flags override env: PLAY_WEBHOOKS_URL, PLAY_APP_SECRET (or EMULATOR_APP_SECRET), PLAY_PHONE_NUMBER_ID,
 * PLAY_DISPLAY_NUMBER, PLAY_WABA_ID, PLAY_WA_ID, PLAY_NAME, PLAY_EMULATOR_URL.
 */

const { values: args } = parseArgs({
  options: {
    webhooks: { type: 'string' },
    'app-secret': { type: 'string' },
    'phone-number-id': { type: 'string' },
    'display-number': { type: 'string' },
    'waba-id': { type: 'string' },
    'wa-id': { type: 'string' },
    name: { type: 'string' },
    emulator: { type: 'string' },
    'poll-ms': { type: 'string' },
    'linger-ms': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
})

if (args.help) {
  console.log(`usage: tsx ops/emulators/play-lead.ts [--webhooks URL] [--app-secret S] [--phone-number-id ID]
  [--display-number N] [--waba-id ID] [--wa-id N] [--name NAME] [--emulator URL] [--poll-ms 500] [--linger-ms 3000]`)
  process.exit(0)
}

const env = process.env
const settings = {
  webhooksUrl: webhookEndpoint(args.webhooks ?? env.PLAY_WEBHOOKS_URL ?? 'http://127.0.0.1:3001'),
  appSecret: args['app-secret'] ?? env.PLAY_APP_SECRET ?? env.EMULATOR_APP_SECRET ?? '',
  phoneNumberId: args['phone-number-id'] ?? env.PLAY_PHONE_NUMBER_ID ?? '100000000000002',
  displayNumber: args['display-number'] ?? env.PLAY_DISPLAY_NUMBER ?? '15550001234',
  wabaId: args['waba-id'] ?? env.PLAY_WABA_ID ?? '100000000000001',
  waId: (args['wa-id'] ?? env.PLAY_WA_ID ?? '5511988887777').replace(/\D/g, ''),
  name: args.name ?? env.PLAY_NAME ?? 'Test Lead',
  emulatorUrl: (args.emulator ?? env.PLAY_EMULATOR_URL ?? 'http://127.0.0.1:4010').replace(/\/+$/, ''),
  pollMs: Number(args['poll-ms'] ?? 500),
  lingerMs: Number(args['linger-ms'] ?? 3000),
}

if (!settings.appSecret) {
  console.error('play-lead: an app secret is needed to sign webhooks (--app-secret or PLAY_APP_SECRET)')
  process.exit(1)
}

/** Accepts a base URL (`http://127.0.0.1:3001`) or the full webhook URL. */
function webhookEndpoint(url: string): string {
  const trimmed = url.replace(/\/+$/, '')
  return trimmed.endsWith('/webhooks/whatsapp') ? trimmed : `${trimmed}/webhooks/whatsapp`
}

// ---- what the lead can tap ----

interface Choice {
  kind: 'button_reply' | 'list_reply' | 'template_button'
  id: string
  title: string
  description?: string
  /** The business message the choice belongs to: a tap's reply carries it as `context.id`. */
  wamid: string
}

let choices: Choice[] = []

// ---- inbound messages, shaped as Meta delivers them ----

const newWamid = () => `wamid.${randomBytes(30).toString('base64')}`

function envelope(message: Record<string, unknown>) {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: settings.wabaId,
        changes: [
          {
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: settings.displayNumber, phone_number_id: settings.phoneNumberId },
              contacts: [{ profile: { name: settings.name }, wa_id: settings.waId }],
              messages: [{ from: settings.waId, id: newWamid(), timestamp: String(Math.floor(Date.now() / 1000)), ...message }],
            },
            field: 'messages',
          },
        ],
      },
    ],
  }
}

function inboundFor(line: string): Record<string, unknown> {
  const n = /^\d+$/.test(line) ? Number(line) : NaN
  const lower = line.toLowerCase()
  const choice = choices[n - 1] ?? choices.find((c) => c.title.toLowerCase() === lower || c.id.toLowerCase() === lower)
  if (!choice) return { type: 'text', text: { body: line } }
  const context = { context: { from: settings.displayNumber, id: choice.wamid } }
  if (choice.kind === 'template_button') return { ...context, type: 'button', button: { payload: choice.id, text: choice.title } }
  if (choice.kind === 'list_reply') {
    return { ...context, type: 'interactive', interactive: { type: 'list_reply', list_reply: { id: choice.id, title: choice.title, ...(choice.description ? { description: choice.description } : {}) } } }
  }
  return { ...context, type: 'interactive', interactive: { type: 'button_reply', button_reply: { id: choice.id, title: choice.title } } }
}

async function deliver(line: string) {
  const message = inboundFor(line)
  if (message.type !== 'text') say(`  (tapped: ${describeTap(message)})`)
  // Signed over the exact string sent, as Meta does.
  const raw = JSON.stringify(envelope(message))
  try {
    const res = await fetch(settings.webhooksUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': metaSignature(settings.appSecret, raw), 'user-agent': 'facebookexternalua' },
      body: raw,
      signal: AbortSignal.timeout(10_000),
    })
    if (res.status !== 200) say(`  ! webhooks answered ${res.status}: ${(await res.text()).slice(0, 300)}`)
  } catch (err) {
    say(`  ! could not reach ${settings.webhooksUrl}: ${err instanceof Error ? err.message : String(err)}`)
  }
}

function describeTap(message: Record<string, unknown>): string {
  const m = message as { button?: { text: string }; interactive?: { button_reply?: { title: string }; list_reply?: { title: string } } }
  return m.button?.text ?? m.interactive?.button_reply?.title ?? m.interactive?.list_reply?.title ?? '?'
}

// ---- what the business sends ----

interface SentMessage {
  wamid: string
  type: string
  body: Record<string, any>
}

function render(m: SentMessage): string[] {
  const b = m.body
  const lines: string[] = []
  if (m.type === 'text') {
    lines.push(`business: ${b.text?.body ?? ''}`)
  } else if (m.type === 'template') {
    const t = b.template ?? {}
    lines.push(`business [template ${t.name} (${t.language?.code})]`)
    const newChoices: Choice[] = []
    for (const c of t.components ?? []) {
      const params = (c.parameters ?? []).map((p: any) => p.text ?? p.payload ?? p[p.type]?.fallback_value ?? p[p.type]?.link ?? p.type)
      if (c.type === 'button' && c.sub_type === 'quick_reply') {
        for (const p of c.parameters ?? []) if (p.type === 'payload') newChoices.push({ kind: 'template_button', id: p.payload, title: p.payload, wamid: m.wamid })
      } else if (params.length > 0) {
        lines.push(`  ${c.type}${c.sub_type ? ` ${c.sub_type}` : ''}: ${params.join(' | ')}`)
      }
    }
    if (newChoices.length > 0) {
      choices = newChoices
      choices.forEach((c, i) => lines.push(`  ${i + 1}) ${c.title}`))
    }
  } else if (m.type === 'interactive') {
    const i = b.interactive ?? {}
    if (i.header?.text) lines.push(`business: *${i.header.text}*`)
    lines.push(`business: ${i.body?.text ?? ''}`)
    if (i.footer?.text) lines.push(`  _${i.footer.text}_`)
    if (i.type === 'button') {
      choices = (i.action?.buttons ?? []).map((btn: any) => ({ kind: 'button_reply', id: btn.reply?.id, title: btn.reply?.title, wamid: m.wamid }))
      choices.forEach((c, n) => lines.push(`  ${n + 1}) [${c.title}]  (id ${c.id})`))
    } else if (i.type === 'list') {
      lines.push(`  [${i.action?.button ?? 'Options'}]`)
      choices = []
      for (const section of i.action?.sections ?? []) {
        if (section.title) lines.push(`  -- ${section.title}`)
        for (const row of section.rows ?? []) {
          choices.push({ kind: 'list_reply', id: row.id, title: row.title, description: row.description, wamid: m.wamid })
          lines.push(`  ${choices.length}) ${row.title}${row.description ? ` - ${row.description}` : ''}  (id ${row.id})`)
        }
      }
    } else {
      lines.push(`  [interactive ${i.type}]`)
    }
  } else {
    const part = b[m.type] ?? {}
    lines.push(`business [${m.type}] ${part.caption ?? part.link ?? part.id ?? ''}`.trimEnd())
  }
  return lines
}

// ---- terminal ----

const interactive = process.stdin.isTTY === true
// Created after the first poll (below): readline starts consuming stdin at once, and piped lines must not be lost.
let rl: ReturnType<typeof createInterface> | undefined

function say(text: string) {
  if (interactive && rl) {
    process.stdout.write('\r\x1b[K')
    console.log(text)
    rl.prompt(true)
  } else {
    console.log(text)
  }
}

const seen = new Set<string>()

async function poll(initial = false) {
  try {
    const res = await fetch(`${settings.emulatorUrl}/_emulator/sent?to=${encodeURIComponent(settings.waId)}`, { signal: AbortSignal.timeout(5000) })
    const { sent } = (await res.json()) as { sent: SentMessage[] }
    for (const m of sent) {
      if (seen.has(m.wamid)) continue
      seen.add(m.wamid)
      // History from before we started is not replayed.
      if (!initial) for (const line of render(m)) say(line)
    }
  } catch (err) {
    if (initial) say(`  ! emulator not reachable at ${settings.emulatorUrl}: ${err instanceof Error ? err.message : String(err)}`)
  }
}

await poll(true)
const poller = setInterval(() => void poll(), settings.pollMs)

say(`playing ${settings.name} (${settings.waId}) -> ${settings.webhooksUrl}; business replies from ${settings.emulatorUrl}. Ctrl-D to quit.`)

const lines = createInterface({ input: process.stdin, output: process.stdout, terminal: interactive })
rl = lines
lines.setPrompt('you> ')

// Lines are delivered one at a time, in the order typed, as a person's messages would arrive.
let queue = Promise.resolve()
lines.on('line', (input) => {
  const line = input.trim()
  if (!line) return lines.prompt()
  queue = queue.then(() => deliver(line)).then(() => {
    if (interactive) lines.prompt()
  })
})
lines.on('close', () => {
  void queue.then(async () => {
    // Give the business a moment to answer the last line (useful when lines are piped in).
    await new Promise((r) => setTimeout(r, interactive ? 0 : settings.lingerMs))
    await poll()
    clearInterval(poller)
    process.exit(0)
  })
})
if (interactive) lines.prompt()
