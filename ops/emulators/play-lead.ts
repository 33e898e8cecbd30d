import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { conversationEnd, resolvePlaySettings, type PlaySettings } from './play-lead-settings.js'
import { metaSignature } from './signature.js'

/**
 * Play a lead from the terminal: every line typed is delivered to our webhooks service as an inbound WhatsApp text
 * message (the envelope Meta sends, signed with the app secret), and whatever the business sends back to this wa_id
 * through the emulator is printed. Buttons and list rows are numbered: type the number (or the exact title or id) to
 * tap it. When the business has been quiet for a moment, the product's API is asked (read-only) whether the bot's
 * flow has ended or handed over, and that is said.
 *
 *   npm run play-lead                          # against `npm start`, same HOST / ports / app secret
 *   tsx ops/emulators/play-lead.ts --wa-id 5511988887777 --name "Ana"
 *
 * Flags override env: PLAY_WEBHOOKS_URL, PLAY_APP_SECRET (or EMULATOR_APP_SECRET), PLAY_PHONE_NUMBER_ID,
 * PLAY_DISPLAY_NUMBER, PLAY_WABA_ID, PLAY_WA_ID, PLAY_NAME, PLAY_EMULATOR_URL, PLAY_API_URL, PLAY_API_KEY,
 * PLAY_QUIET_MS; which in turn override what `npm start` reads (HOST, WEBHOOKS_PORT, API_PORT, WHATSAPP_EMULATOR_PORT,
 * META_APP_SECRET), see play-lead-settings.ts.
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
    api: { type: 'string' },
    'api-key': { type: 'string' },
    'poll-ms': { type: 'string' },
    'linger-ms': { type: 'string' },
    'quiet-ms': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
})

if (args.help) {
  console.log(`usage: tsx ops/emulators/play-lead.ts [--webhooks URL] [--app-secret S] [--phone-number-id ID]
  [--display-number N] [--waba-id ID] [--wa-id N] [--name NAME] [--emulator URL] [--api URL] [--api-key KEY]
  [--poll-ms 500] [--linger-ms 3000] [--quiet-ms 2500]
Defaults follow \`npm start\`: HOST, WEBHOOKS_PORT, API_PORT, WHATSAPP_EMULATOR_PORT and META_APP_SECRET.`)
  process.exit(0)
}

let settings: PlaySettings
try {
  settings = resolvePlaySettings(args, process.env)
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err))
  process.exit(1)
}

if (!settings.appSecret) {
  console.error('play-lead: an app secret is needed to sign webhooks (--app-secret, PLAY_APP_SECRET or META_APP_SECRET)')
  process.exit(1)
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
    else {
      lastLineAt = Date.now()
      touch()
    }
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
      if (initial) continue
      for (const line of render(m)) say(line)
      touch()
    }
  } catch (err) {
    if (initial) say(`  ! emulator not reachable at ${settings.emulatorUrl}: ${err instanceof Error ? err.message : String(err)}`)
  }
}

// ---- has the conversation ended? ----

// Every line we deliver and every business message is activity; once it has been quiet for quietMs, the API says
// whether the bot is done (ended, handed over, no flow), and that is said once per quiet spell.
let activity = 0
let lastActivityAt = Date.now()
let checkedActivity = 0
let apiTrouble = false
let checking = false
let lastLineAt = 0
function touch() {
  activity++
  lastActivityAt = Date.now()
}

async function checkEnded(): Promise<void> {
  if (activity === 0 || checkedActivity === activity || Date.now() - lastActivityAt < settings.quietMs || !settings.api || checking) return
  const seenActivity = activity
  checking = true
  try {
    const res = await fetch(`${settings.api.url}/v1/conversations?limit=200`, { headers: { authorization: `Bearer ${settings.api.key}` }, signal: AbortSignal.timeout(5000) })
    if (res.status !== 200) throw new Error(`answered ${res.status}`)
    const { data } = (await res.json()) as { data: { waId: string; mode: string; state: { status: string } | null; lastEventAt: string | null }[] }
    // Most recently active first: the first one for our wa_id is ours.
    const mine = data.find((c) => c.waId === settings.waId)
    // The bot has not taken our last line yet (its state is from before it): ask again at the next poll.
    if (!mine || !mine.lastEventAt || Date.parse(mine.lastEventAt) < lastLineAt - 1000) return
    checkedActivity = seenActivity
    const ended = conversationEnd(mine)
    if (ended) say(`  -- ${ended}`)
  } catch (err) {
    checkedActivity = seenActivity
    if (!apiTrouble) say(`  ! could not ask ${settings.api.url} whether the conversation ended (${err instanceof Error ? err.message : String(err)}); set --api / --api-key`)
    apiTrouble = true
  } finally {
    checking = false
  }
}

await poll(true)
const poller = setInterval(() => void poll().then(checkEnded), settings.pollMs)

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
    clearInterval(poller)
    await poll()
    // Piped input: say how the conversation stands before leaving, even if the business is still typing.
    if (!interactive) {
      lastActivityAt = 0
      await checkEnded()
    }
    process.exit(0)
  })
})
if (interactive) lines.prompt()
