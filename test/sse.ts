import { request, type IncomingMessage } from 'node:http'

/** One dispatched SSE message, as an EventSource would see it (`event` defaults to 'message'). */
export interface SseMessage {
  id: string
  event: string
  data: string
}

/**
 * A Server-Sent Events client over real HTTP, parsing the stream the way the WHATWG spec says (comments ignored, an
 * id-only block moves the last event id without dispatching), the way the dashboard reads it with fetch().
 */
export interface SseClient {
  status: number
  headers: IncomingMessage['headers']
  /** Everything dispatched so far, in order. */
  messages: SseMessage[]
  /** Comment lines seen (heartbeats). */
  comments: number
  /** The last event id, as EventSource keeps it: what to send back as Last-Event-ID. */
  lastEventId: string
  /** The raw body, for error responses. */
  body: string
  ended: boolean
  /** Resolves when `until(messages)` holds (rejects after `timeoutMs` with what arrived, so a failure says why). */
  waitFor: (until: (messages: SseMessage[]) => boolean, timeoutMs?: number) => Promise<SseMessage[]>
  waitForEnd: (timeoutMs?: number) => Promise<void>
  close: () => void
}

export function openSse(url: string, headers: Record<string, string> = {}, received?: (m: SseMessage, at: bigint) => void): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const waiters = new Set<() => void>()
      const notify = () => { for (const w of [...waiters]) w() }
      let buffer = ''
      let id = ''
      let event = ''
      let data: string[] = []
      const client: SseClient = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        messages: [],
        comments: 0,
        lastEventId: '',
        body: '',
        ended: false,
        waitFor: (until, timeoutMs = 10_000) => new Promise((ok, fail) => {
          const check = () => {
            if (until(client.messages)) {
              waiters.delete(check)
              clearTimeout(timer)
              ok(client.messages)
            } else if (client.ended) {
              waiters.delete(check)
              clearTimeout(timer)
              fail(new Error(`stream ended before the condition held; got ${JSON.stringify(client.messages)}`))
            }
          }
          const timer = setTimeout(() => {
            waiters.delete(check)
            fail(new Error(`timed out after ${timeoutMs} ms; got ${JSON.stringify(client.messages)}`))
          }, timeoutMs)
          waiters.add(check)
          check()
        }),
        waitForEnd: (timeoutMs = 10_000) => new Promise((ok, fail) => {
          const check = () => {
            if (!client.ended) return
            waiters.delete(check)
            clearTimeout(timer)
            ok()
          }
          const timer = setTimeout(() => {
            waiters.delete(check)
            fail(new Error(`stream still open after ${timeoutMs} ms`))
          }, timeoutMs)
          waiters.add(check)
          check()
        }),
        close: () => req.destroy(),
      }
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        const at = process.hrtime.bigint()
        client.body += client.status === 200 ? '' : chunk
        buffer += chunk
        let nl: number
        while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
          const line = buffer.slice(0, nl)
          buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1))
          if (line === '') {
            client.lastEventId = id
            if (data.length > 0) {
              const m = { id, event: event || 'message', data: data.join('\n') }
              client.messages.push(m)
              received?.(m, at)
            }
            event = ''
            data = []
            continue
          }
          if (line.startsWith(':')) {
            client.comments++
            continue
          }
          const colon = line.indexOf(':')
          const field = colon < 0 ? line : line.slice(0, colon)
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
          if (field === 'id') id = value
          else if (field === 'event') event = value
          else if (field === 'data') data.push(value)
        }
        notify()
      })
      const end = () => {
        client.ended = true
        notify()
      }
      res.on('end', end)
      res.on('close', end)
      res.on('error', end)
      resolve(client)
    })
    req.on('error', reject)
    req.end()
  })
}

/** The parsed `data` of the analytics messages received. */
export const eventsOf = (messages: SseMessage[]) =>
  messages.filter((m) => m.event === 'analytics').map((m) => JSON.parse(m.data) as { id: string; name: string; [k: string]: unknown })
