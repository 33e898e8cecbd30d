import { createHash, randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * A local Unleash server, the client API only: what `unleash-client` (server-side SDKs) talks to.
 * - `GET /api/client/features`: the toggles in Unleash's client format (`{ version: 2, features, segments? }`), with
 *   an ETag; `If-None-Match` with the current one answers 304, as Unleash does, so polling costs nothing.
 * - `POST /api/client/register` and `POST /api/client/metrics`: accepted (202) and kept, so tests can check the
 *   client reports.
 * - Auth: `Authorization: <client token>`; a missing or unknown token is 401 with Unleash's error body.
 * - `fail(status | 'down')`: answer every request with that status, or stop answering (connections reset), until
 *   `recover()`; to show the product keeps its last known toggles.
 */
export interface UnleashFeature {
  name: string
  enabled: boolean
  description?: string
  project?: string
  type?: string
  stale?: boolean
  impressionData?: boolean
  strategies: Array<{ name: string; parameters?: Record<string, string>; constraints?: unknown[]; segments?: number[]; variants?: unknown[] }>
  variants?: Array<{ name: string; weight: number; weightType?: string; stickiness?: string; payload?: { type: string; value: string }; overrides?: Array<{ contextName: string; values: string[] }> }>
  dependencies?: Array<{ feature: string; enabled?: boolean; variants?: string[] }>
}

export interface UnleashEmulatorOptions {
  host?: string
  port?: number
  /** Client tokens accepted; empty accepts any non-empty token. */
  tokens?: string[]
  features?: UnleashFeature[]
}

export interface UnleashEmulator {
  url: string
  /** The client API base the SDK is given (`<url>/api`). */
  apiUrl: string
  setFeatures(features: UnleashFeature[]): void
  fail(mode: number | 'down'): void
  recover(): void
  /** How many feature fetches were answered (200 or 304) and refused. */
  stats(): { fetches: number; notModified: number; refused: number }
  registrations: unknown[]
  metrics: unknown[]
  stop(): Promise<void>
}

const MAX_BODY_BYTES = 1_048_576

export async function startUnleashEmulator(options: UnleashEmulatorOptions = {}): Promise<UnleashEmulator> {
  const host = options.host ?? '127.0.0.1'
  const tokens = new Set(options.tokens ?? [])
  let features = options.features ?? []
  let etag = etagOf(features)
  let failure: number | 'down' | null = null
  const counts = { fetches: 0, notModified: 0, refused: 0 }
  const registrations: unknown[] = []
  const metrics: unknown[] = []

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, { id: randomUUID(), name: 'InternalError', message: 'emulator error' })
    })
  })

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (failure === 'down') {
      req.socket.destroy()
      return
    }
    if (failure !== null) {
      counts.refused += 1
      send(res, failure, { id: randomUUID(), name: 'ServiceUnavailable', message: 'the emulator was told to fail' })
      return
    }
    const url = new URL(req.url ?? '/', 'http://emulator')
    const token = req.headers.authorization
    if (!token || (tokens.size > 0 && !tokens.has(token))) {
      counts.refused += 1
      send(res, 401, { id: randomUUID(), name: 'AuthenticationRequired', message: 'You must log in to use Unleash. Your request had no authorization header, or the token is not valid.' })
      return
    }
    if (req.method === 'GET' && url.pathname === '/api/client/features') {
      counts.fetches += 1
      if (req.headers['if-none-match'] === etag) {
        counts.notModified += 1
        res.writeHead(304, { etag })
        res.end()
        return
      }
      send(res, 200, { version: 2, features, query: {}, meta: { etag, revisionId: 1, queryHash: 'emulator' } }, { etag })
      return
    }
    if (req.method === 'POST' && (url.pathname === '/api/client/register' || url.pathname === '/api/client/metrics')) {
      const body = await readJson(req)
      if (body === undefined) {
        send(res, 400, { id: randomUUID(), name: 'BadDataError', message: 'Request validation failed: the body is not JSON' })
        return
      }
      ;(url.pathname.endsWith('register') ? registrations : metrics).push(body)
      res.writeHead(202)
      res.end()
      return
    }
    send(res, 404, { id: randomUUID(), name: 'NotFoundError', message: `Could not find ${url.pathname}` })
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => resolve())
  })
  const { port } = server.address() as AddressInfo
  const url = `http://${host}:${port}`

  return {
    url,
    apiUrl: `${url}/api`,
    setFeatures(next) {
      features = next
      etag = etagOf(next)
    },
    fail(mode) {
      failure = mode
    },
    recover() {
      failure = null
    },
    stats: () => ({ ...counts }),
    registrations,
    metrics,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
}

const etagOf = (features: UnleashFeature[]) => `"${createHash('sha1').update(JSON.stringify(features)).digest('hex').slice(0, 16)}"`

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) return undefined
    chunks.push(chunk)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    return undefined
  }
}

/** The client token `npm start` gives the API for its local emulator (development only). */
export const DEMO_UNLEASH_TOKEN = 'default:development.local-unleash-emulator-token'

/** What `npm start`'s emulator serves: the product's flags on for everyone, plus a gradual rollout to show one. */
export const DEMO_TOGGLES: UnleashFeature[] = [
  ...['analytics.live-feed', 'analytics.posthog-forwarding'].map((name) => ({
    name, enabled: true, type: 'release', strategies: [{ name: 'flexibleRollout', parameters: { rollout: '100', stickiness: 'default', groupId: name }, constraints: [] }],
  })),
  {
    name: 'bot.new-greeting', enabled: true, type: 'experiment', description: 'Half of the leads (by lead id) get the new greeting variant',
    strategies: [{ name: 'flexibleRollout', parameters: { rollout: '50', stickiness: 'userId', groupId: 'bot.new-greeting' }, constraints: [] }],
    variants: [{ name: 'warm', weight: 500, stickiness: 'userId', payload: { type: 'string', value: 'Hi! 👋 How can we help you today?' } }, { name: 'brief', weight: 500, stickiness: 'userId', payload: { type: 'string', value: 'Hello, what do you need?' } }],
  },
]
