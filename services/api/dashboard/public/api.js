// The public API, as the dashboard uses it. The key travels only in the Authorization header; it is kept in this
// tab's session storage (gone when the tab closes) and never in a URL, a cookie or local storage.

const KEY_ITEM = 'dashboard.apiKey'

export const storedKey = () => sessionStorage.getItem(KEY_ITEM)
export const storeKey = (key) => sessionStorage.setItem(KEY_ITEM, key)
export const forgetKey = () => sessionStorage.removeItem(KEY_ITEM)

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`)
    this.status = status
    this.code = body?.error?.code ?? 'HTTP'
  }
}

async function call(path, { key = storedKey(), method = 'GET', body, signal } = {}) {
  const headers = { authorization: `Bearer ${key}`, accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal, cache: 'no-store' })
  const data = await res.json().catch(() => null)
  if (!res.ok) throw new ApiError(res.status, data)
  return data
}

export const me = (key) => call('/v1/me', { key })
export const query = (body, signal) => call('/v1/analytics/query', { method: 'POST', body, signal })
export const funnel = (params, signal) => call(`/v1/analytics/funnels?${new URLSearchParams(params)}`, { signal })

/**
 * The live feed: Server-Sent Events read with fetch and a stream reader (EventSource cannot send an Authorization
 * header, and the key must not go in the URL). Reconnects with Last-Event-ID after a drop, so nothing is missed;
 * stops for good on 401/403 or when `signal` aborts. `event: reset` means more was missed than a resume sends: the
 * caller reloads its figures.
 */
export async function streamLive({ onEvent, onStatus, onReset, signal }) {
  let lastId = null
  let delay = 500
  while (!signal.aborted) {
    try {
      const headers = { authorization: `Bearer ${storedKey()}`, accept: 'text/event-stream' }
      if (lastId) headers['last-event-id'] = lastId
      const res = await fetch('/v1/analytics/live', { headers, signal, cache: 'no-store' })
      if (res.status === 401 || res.status === 403) { onStatus('unauthorized'); return }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`)
      onStatus('open')
      delay = 500
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let end
        while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const frame = buffer.slice(0, end)
          buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '')
          const message = parseFrame(frame)
          if (message.id) lastId = message.id
          if (message.event === 'reset') onReset?.()
          else if (message.data && message.event === 'analytics') {
            try { onEvent(JSON.parse(message.data)) } catch { /* a frame that is not JSON is not an event */ }
          }
        }
      }
    } catch (err) {
      if (signal.aborted) return
    }
    onStatus('reconnecting')
    await new Promise((r) => setTimeout(r, delay))
    delay = Math.min(delay * 2, 10_000)
  }
}

function parseFrame(frame) {
  const message = { id: null, event: 'message', data: '' }
  const data = []
  for (const line of frame.split(/\r?\n/)) {
    if (line.startsWith(':')) continue // a comment: the server's keep-alive
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'id') message.id = value
    else if (field === 'event') message.event = value
    else if (field === 'data') data.push(value)
  }
  message.data = data.join('\n')
  return message
}
