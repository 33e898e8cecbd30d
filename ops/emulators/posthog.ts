import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { gunzipSync } from 'node:zlib'

/**
 * A local stand-in for PostHog's capture endpoints, as posthog-node and the browser snippet call them:
 * `POST /batch/` (`{ api_key, batch: [...], sent_at, historical_migration? }`, what posthog-node's flush sends),
 * `POST /capture/`, `/e/` and `/i/v0/e/` (one event, or a `batch`). Bodies may be gzipped (`Content-Encoding: gzip`,
 * posthog-node's default, or `?compression=gzip-js`). Answers `200 {"status":1}`, and errors with PostHog's error body
 * (`{ type, code, detail, attr }`). Events are kept by `uuid`, as PostHog deduplicates them: a resent event is counted
 * in `duplicates`, not stored twice. Every request's decoded body is kept too (`bodies`), so a test can search what
 * actually went over the wire.
 *
 * Person deletion as PostHog's private API takes it: `POST /api/projects/:projectId/persons/bulk_delete/` with a
 * personal API key (`Authorization: Bearer …`) and `{ distinct_ids (≤ 1000), delete_events }`, answered 202. With
 * `delete_events` the emulator drops the stored events of those distinct ids at once (PostHog queues it); each request
 * is kept in `deletions`.
 *
 * Control, in-process or over HTTP (`/_emulator/...`, no auth: keep it on loopback): fail the next N requests with a
 * status, go down (every request 5xx, or no answer at all until the client times out), list, reset.
 */

export interface PosthogEmulatorOptions {
  /** 0 (default) picks a free port. */
  port?: number
  host?: string
  /** Accepted project API keys; empty or unset accepts any non-empty key. */
  apiKeys?: string[]
  /** Accepted personal API keys (deletions); empty or unset accepts any non-empty key. */
  personalApiKeys?: string[]
}

export interface ReceivedDeletion {
  projectId: string
  distinctIds: string[]
  deleteEvents: boolean
  /** Stored events removed by this request. */
  eventsDeleted: number
  receivedAt: string
}

export interface ReceivedEvent {
  uuid: string | null
  event: string
  distinctId: string
  timestamp: string | null
  properties: Record<string, unknown>
  apiKey: string
  path: string
  receivedAt: string
}

export interface ReceivedRequest {
  seq: number
  path: string
  gzip: boolean
  status: number
  events: number
  /** The decoded body as received (after gunzip). */
  body: string
}

/** `timeout`: accept the request and never answer (until reset or stop); a status: answer every request with it. */
export type DownMode = number | 'timeout' | null

export interface PosthogEmulator {
  url: string
  /** Unique events by uuid (events without uuid are always added), in arrival order. */
  readonly events: ReceivedEvent[]
  /** Events that arrived again with a uuid already stored. */
  readonly duplicates: number
  readonly requests: ReceivedRequest[]
  /** Person deletion requests PostHog accepted, in arrival order. */
  readonly deletions: ReceivedDeletion[]
  /** Every decoded body received, joined: what a privacy test greps. */
  bodies(): string
  failNext(status: number, times?: number): void
  setDown(mode: DownMode): void
  /** Hold every answer this long (a PostHog across the internet, not on loopback). */
  setLatency(ms: number): void
  reset(): void
  stop(): Promise<void>
}

type ErrorBody = { type: string; code: string; detail: string; attr: string | null }
const posthogError = (status: number, detail?: string): ErrorBody => {
  if (status === 401) return { type: 'authentication_error', code: 'invalid_api_key', detail: detail ?? 'Project API key invalid. You can find your project API key in PostHog project settings.', attr: null }
  if (status === 400) return { type: 'validation_error', code: 'invalid_payload', detail: detail ?? 'Malformed request data', attr: null }
  if (status === 413) return { type: 'validation_error', code: 'payload_too_large', detail: detail ?? 'Request body too large', attr: null }
  if (status === 429) return { type: 'throttled', code: 'rate_limited', detail: detail ?? 'Request was throttled.', attr: null }
  return { type: 'server_error', code: 'server_error', detail: detail ?? 'A server error occurred.', attr: null }
}

const CAPTURE_PATHS = new Set(['/batch/', '/batch', '/capture/', '/capture', '/e/', '/e', '/i/v0/e/', '/i/v0/e'])
const MAX_BODY_BYTES = 20 * 1024 * 1024

export async function startPosthogEmulator(options: PosthogEmulatorOptions = {}): Promise<PosthogEmulator> {
  const events: ReceivedEvent[] = []
  const seen = new Set<string>()
  const requests: ReceivedRequest[] = []
  let duplicates = 0
  let seq = 0
  let failures: { status: number; remaining: number }[] = []
  let down: DownMode = null
  let latencyMs = 0
  const hanging = new Set<ServerResponse>()
  const sockets = new Set<Socket>()
  const keys = new Set(options.apiKeys ?? [])
  const personalKeys = new Set(options.personalApiKeys ?? [])
  const deletions: ReceivedDeletion[] = []

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }

  const readBody = (req: IncomingMessage) => new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_BODY_BYTES) reject(Object.assign(new Error('too large'), { status: 413 }))
      else chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })

  const control = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const raw = (await readBody(req)).toString('utf8')
    const body = raw ? JSON.parse(raw) as Record<string, unknown> : {}
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /_emulator/received': return send(res, 200, { events, duplicates, deletions, requests: requests.map(({ body: _b, ...r }) => r) })
      case 'POST /_emulator/fail-next': emulator.failNext(Number(body.status ?? 503), Number(body.times ?? 1)); return send(res, 200, { ok: true })
      case 'POST /_emulator/down': emulator.setDown((body.mode ?? null) as DownMode); return send(res, 200, { ok: true })
      case 'POST /_emulator/latency': emulator.setLatency(Number(body.ms ?? 0)); return send(res, 200, { ok: true })
      case 'POST /_emulator/reset': emulator.reset(); return send(res, 200, { ok: true })
      default: return send(res, 404, { error: 'unknown control route' })
    }
  }

  /**
   * What the test told the emulator to do to the next request (capture and deletion alike): hang it (down 'timeout'),
   * answer every request with a status (down), or fail the next N. True when the request was answered (or held).
   */
  const injectedFault = (res: ServerResponse, record: (status: number) => void): boolean => {
    if (down === 'timeout') {
      record(0)
      hanging.add(res)
      res.on('close', () => hanging.delete(res))
      return true
    }
    const failure = failures[0]
    if (down === null && !failure) return false
    const status = down ?? failure!.status
    if (failure && down === null && --failure.remaining <= 0) failures.shift()
    record(status)
    send(res, status, posthogError(status))
    return true
  }

  const capture = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const record = (status: number, gzip: boolean, text: string, count: number) => requests.push({ seq: ++seq, path: url.pathname, gzip, status, events: count, body: text })
    let buf: Buffer
    try {
      buf = await readBody(req)
      if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs))
    } catch {
      record(413, false, '', 0)
      return send(res, 413, posthogError(413))
    }
    const gzip = req.headers['content-encoding'] === 'gzip' || url.searchParams.get('compression') === 'gzip-js' || url.searchParams.get('compression') === 'gzip'
    let text: string
    try {
      text = (gzip ? gunzipSync(buf) : buf).toString('utf8')
    } catch {
      record(400, gzip, '', 0)
      return send(res, 400, posthogError(400, 'Malformed request data: Failed to decompress data.'))
    }
    if (injectedFault(res, (status) => record(status, gzip, text, 0))) return
    let doc: Record<string, unknown>
    try {
      const parsed = JSON.parse(text) as unknown
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object')
      doc = parsed as Record<string, unknown>
    } catch {
      record(400, gzip, text, 0)
      return send(res, 400, posthogError(400, 'Malformed request data: Invalid JSON.'))
    }
    const list = Array.isArray(doc.batch) ? doc.batch as Record<string, unknown>[] : [doc]
    const apiKey = String(doc.api_key ?? doc.token ?? (list[0]?.properties as Record<string, unknown> | undefined)?.token ?? list[0]?.api_key ?? '')
    if (!apiKey || (keys.size > 0 && !keys.has(apiKey))) {
      record(401, gzip, text, 0)
      return send(res, 401, posthogError(401))
    }
    for (const [i, e] of list.entries()) {
      if (!e || typeof e !== 'object' || typeof e.event !== 'string' || !e.event) {
        record(400, gzip, text, 0)
        return send(res, 400, posthogError(400, `Invalid payload: batch[${i}] has no event name`))
      }
      const distinct = e.distinct_id ?? (e.properties as Record<string, unknown> | undefined)?.distinct_id
      if (typeof distinct !== 'string' || !distinct) {
        record(400, gzip, text, 0)
        return send(res, 400, posthogError(400, `Invalid payload: batch[${i}] has no distinct_id`))
      }
    }
    for (const e of list) {
      const uuid = typeof e.uuid === 'string' ? e.uuid : null
      if (uuid && seen.has(uuid)) { duplicates++; continue }
      if (uuid) seen.add(uuid)
      const props = (e.properties ?? {}) as Record<string, unknown>
      events.push({
        uuid, event: String(e.event), distinctId: String(e.distinct_id ?? props.distinct_id), timestamp: typeof e.timestamp === 'string' ? e.timestamp : null,
        properties: props, apiKey, path: url.pathname, receivedAt: new Date().toISOString(),
      })
    }
    record(200, gzip, text, list.length)
    send(res, 200, { status: 1 })
  }

  const bulkDelete = async (req: IncomingMessage, res: ServerResponse, url: URL, projectId: string) => {
    const text = (await readBody(req)).toString('utf8')
    const record = (status: number) => requests.push({ seq: ++seq, path: url.pathname, gzip: false, status, events: 0, body: text })
    if (injectedFault(res, record)) return
    const auth = /^Bearer\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''))?.[1]
    if (!auth || (personalKeys.size > 0 && !personalKeys.has(auth))) {
      record(401)
      return send(res, 401, { type: 'authentication_error', code: 'authentication_failed', detail: 'Incorrect authentication credentials.', attr: null })
    }
    let doc: { distinct_ids?: unknown; ids?: unknown; delete_events?: unknown }
    try { doc = JSON.parse(text) as typeof doc } catch { record(400); return send(res, 400, posthogError(400, 'Malformed request data: Invalid JSON.')) }
    const ids = doc.distinct_ids
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > 1000 || !ids.every((i) => typeof i === 'string' && i)) {
      record(400)
      return send(res, 400, { type: 'validation_error', code: 'invalid_input', detail: 'distinct_ids: a list of 1 to 1000 distinct ids', attr: 'distinct_ids' })
    }
    const gone = new Set(ids as string[])
    let eventsDeleted = 0
    if (doc.delete_events === true) {
      for (let i = events.length - 1; i >= 0; i--) if (gone.has(events[i]!.distinctId)) { events.splice(i, 1); eventsDeleted++ }
    }
    deletions.push({ projectId, distinctIds: [...gone], deleteEvents: doc.delete_events === true, eventsDeleted, receivedAt: new Date().toISOString() })
    record(202)
    send(res, 202, {})
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://emulator')
    const deletion = req.method === 'POST' ? /^\/api\/projects\/([^/]+)\/persons\/bulk_delete\/?$/.exec(url.pathname) : null
    const handle = url.pathname.startsWith('/_emulator/') ? control(req, res, url)
      : req.method === 'POST' && CAPTURE_PATHS.has(url.pathname) ? capture(req, res, url)
      : deletion ? bulkDelete(req, res, url, decodeURIComponent(deletion[1]!))
      : Promise.resolve(send(res, 404, { type: 'invalid_request', code: 'not_found', detail: 'Not found.', attr: null }))
    handle.catch(() => { if (!res.headersSent) send(res, 500, posthogError(500)) })
  })
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve))
  const address = server.address() as AddressInfo

  const emulator: PosthogEmulator = {
    url: `http://${address.address}:${address.port}`,
    events,
    get duplicates() { return duplicates },
    requests,
    deletions,
    bodies: () => requests.map((r) => r.body).join('\n'),
    failNext(status, times = 1) { failures.push({ status, remaining: times }) },
    setLatency(ms) { latencyMs = Math.max(0, ms) },
    setDown(mode) {
      down = mode
      if (mode !== 'timeout') for (const res of hanging) res.destroy()
    },
    reset() {
      events.length = 0; requests.length = 0; deletions.length = 0; seen.clear(); duplicates = 0; seq = 0; failures = []; latencyMs = 0
      emulator.setDown(null)
    },
    stop: () => new Promise<void>((resolve) => {
      for (const res of hanging) res.destroy()
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    }),
  }
  return emulator
}
