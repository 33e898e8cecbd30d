import { connect, type Socket } from 'node:net'
import { expect } from 'vitest'
import type { App } from '../lib/http/create-server.js'

export interface RawExchange {
  /** Everything the server wrote before it closed the connection. */
  text: string
  status: number | null
  headers: Record<string, string>
  /** The JSON body, when there is one. */
  json: unknown
  /** Whether the server closed the connection (rather than the test giving up on it). */
  closedByServer: boolean
  /** Milliseconds from connecting to the server closing (or the test giving up). */
  elapsedMs: number
}

/**
 * Talks HTTP over a real TCP socket, as a slow or misbehaving client would: writes `initial`, then one `trickle`
 * chunk every `everyMs` until the server closes the connection or `giveUpMs` passes. What app.inject() cannot do:
 * it never goes through Node's HTTP parser or its timeouts.
 */
export function rawExchange(port: number, options: { initial: string | Buffer; trickle?: string; everyMs?: number; giveUpMs: number; onConnected?: (socket: Socket) => void }): Promise<RawExchange> {
  return new Promise((resolve) => {
    const started = Date.now()
    const chunks: Buffer[] = []
    let timer: NodeJS.Timeout | undefined
    let done = false
    const socket = connect(port, '127.0.0.1')
    const finish = (closedByServer: boolean) => {
      if (done) return
      done = true
      clearInterval(timer)
      clearTimeout(giveUp)
      socket.destroy()
      const text = Buffer.concat(chunks).toString('utf8')
      resolve({ ...parseResponse(text), text, closedByServer, elapsedMs: Date.now() - started })
    }
    const giveUp = setTimeout(() => finish(false), options.giveUpMs)
    socket.on('data', (d) => chunks.push(d))
    socket.on('close', () => finish(true))
    socket.on('error', () => finish(true))
    socket.on('connect', () => {
      options.onConnected?.(socket)
      socket.write(options.initial)
      if (options.trickle) {
        timer = setInterval(() => {
          if (!socket.destroyed && socket.writable) socket.write(options.trickle!)
        }, options.everyMs ?? 100)
      }
    })
  })
}

function parseResponse(text: string): { status: number | null; headers: Record<string, string>; json: unknown } {
  const split = text.indexOf('\r\n\r\n')
  if (split < 0) return { status: null, headers: {}, json: undefined }
  const [statusLine, ...headerLines] = text.slice(0, split).split('\r\n')
  const headers = Object.fromEntries(headerLines.map((line) => {
    const i = line.indexOf(':')
    return [line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim()]
  }))
  const body = text.slice(split + 4)
  let json: unknown
  try {
    json = body ? JSON.parse(body) : undefined
  } catch {
    json = undefined
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? NaN) || null, headers, json }
}

/** The port a test app listens on (after `app.listen({ port: 0 })`). */
export const portOf = (app: App) => (app.server.address() as { port: number }).port

/** Asserts the product's error shape with this code, and returns the error. */
export function expectErrorShape(body: unknown, code: string): { code: string; message: string; requestId: string } {
  expect(body).toEqual({ error: { code, message: expect.any(String), requestId: expect.any(String) } })
  return (body as { error: { code: string; message: string; requestId: string } }).error
}
