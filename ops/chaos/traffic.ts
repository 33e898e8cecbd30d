import { metaSignature } from '../emulators/signature.js'
import type { Channel, Outcome } from './ledger.js'
import { sleep } from './children.js'

export interface ChaosTenant {
  id: string
  phoneNumberId: string
  wabaId: string
  displayNumber: string
  formPublicKey: string
}

export interface Request {
  channel: Channel
  key: string
  poison: string | null
  path: string
  headers: Record<string, string>
  body: string
}

const WA_POISONS = ['nul', 'lone-surrogate', 'malformed-json', 'not-an-object'] as const
const FORM_POISONS = ['nul', 'lone-surrogate', 'malformed-json'] as const

/**
 * Builds the items of one phase. Keys carry the run and phase, so a phase's items are counted apart from the
 * others': `wamid.chaos<run>x<phase>x<seq>` and `p<phase>-<seq>.<run>@chaos.example`.
 */
export class ItemFactory {
  private seq: Record<Channel, number> = { whatsapp: 0, forms: 0 }
  constructor(private readonly run: string, private readonly phase: string, private readonly tenants: ChaosTenant[], private readonly appSecret: string) {}

  /** Meta's envelope for one inbound text message, signed over the exact bytes sent. */
  whatsapp(poison: string | null = null): Request {
    const n = ++this.seq.whatsapp
    const t = this.tenants[n % this.tenants.length]!
    const wamid = `wamid.chaos${this.run}x${this.phase}x${n}`
    // A small pool of senders: the same people write again and again, as on a real number.
    const from = `55119${String(80_000_000 + (n % 40)).padStart(8, '0')}`
    const text = poison === 'nul' ? `bad \u0000 text ${n}` : poison === 'lone-surrogate' ? `bad \ud800 text ${n}` : `Olá, mensagem ${n}`
    let body = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [{ id: t.wabaId, changes: [{ field: 'messages', value: {
        messaging_product: 'whatsapp',
        metadata: { display_phone_number: t.displayNumber, phone_number_id: t.phoneNumberId },
        contacts: [{ profile: { name: 'Chaos Lead' }, wa_id: from }],
        messages: [{ from, id: wamid, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }],
      } }] }],
    })
    if (poison === 'malformed-json') body = body.slice(0, Math.floor(body.length / 2))
    if (poison === 'not-an-object') body = JSON.stringify([wamid])
    return {
      channel: 'whatsapp', key: wamid, poison, path: '/webhooks/whatsapp', body,
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': metaSignature(this.appSecret, body), 'user-agent': 'facebookexternalua' },
    }
  }

  /** A JSON submission of a tenant's public form by a new person. */
  form(poison: string | null = null): Request {
    const n = ++this.seq.forms
    const t = this.tenants[n % this.tenants.length]!
    const email = `p${this.phase}-${n}.${this.run}@chaos.example`
    const name = poison === 'nul' ? `Bad \u0000 Name ${n}` : poison === 'lone-surrogate' ? `Bad \udc00 Name ${n}` : `Chaos Person ${n}`
    let body = JSON.stringify({ name, email, utm_source: 'chaos' })
    if (poison === 'malformed-json') body = `{"name": "Broken ${n}", "email": "${email}"`
    return { channel: 'forms', key: email, poison, path: `/forms/${t.formPublicKey}/submissions`, body, headers: { 'content-type': 'application/json' } }
  }

  /** The rotation of poisons, one per `every` items when `poisoned` is on. */
  next(channel: Channel, poisoned: boolean, every: number): Request {
    const n = this.seq[channel] + 1
    if (!poisoned || n % every !== 0) return channel === 'whatsapp' ? this.whatsapp() : this.form()
    const kinds = channel === 'whatsapp' ? WA_POISONS : FORM_POISONS
    const kind = kinds[Math.floor(n / every) % kinds.length]!
    return channel === 'whatsapp' ? this.whatsapp(kind) : this.form(kind)
  }
}

/**
 * Posts items at a fixed rate, in bursts, until stopped; every outcome is recorded, answered or not. Each request
 * is bounded by its own timeout, so stopping waits at most that long for the ones in flight.
 */
export class Traffic {
  readonly outcomes: Outcome[] = []
  private running = false
  private loops: Promise<void>[] = []
  private inFlight = new Set<Promise<void>>()
  poisoned = false

  constructor(
    private readonly baseUrl: string,
    private readonly items: ItemFactory,
    private readonly options: { whatsappRate: number; formRate: number; burst: number; poisonEvery: number; requestTimeoutMs: number },
  ) {}

  start() {
    this.running = true
    this.loops = [this.loop('whatsapp', this.options.whatsappRate), this.loop('forms', this.options.formRate)]
  }

  async stop() {
    this.running = false
    await Promise.all(this.loops)
    await Promise.all([...this.inFlight])
  }

  private async loop(channel: Channel, perSecond: number) {
    const burst = Math.min(this.options.burst, perSecond)
    const everyMs = (1000 * burst) / perSecond
    let next = Date.now()
    while (this.running) {
      for (let i = 0; i < burst; i++) this.send(this.items.next(channel, this.poisoned, this.options.poisonEvery))
      next += everyMs
      await sleep(Math.max(0, next - Date.now()))
    }
  }

  private send(req: Request) {
    const p = (async () => {
      let status: number | null = null
      let error: string | null = null
      try {
        const res = await fetch(`${this.baseUrl}${req.path}`, { method: 'POST', headers: req.headers, body: req.body, signal: AbortSignal.timeout(this.options.requestTimeoutMs) })
        status = res.status
        await res.arrayBuffer()
      } catch (err) {
        error = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name ?? String(err)
      }
      this.outcomes.push({ channel: req.channel, key: req.key, poison: req.poison, status, error })
    })()
    this.inFlight.add(p)
    void p.finally(() => this.inFlight.delete(p))
  }
}
