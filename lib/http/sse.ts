import { PassThrough } from 'node:stream'

/**
 * A Server-Sent Events body: a stream the route hands to `reply.send`, so Fastify's hooks, headers and logging stay
 * as for any response. Writes before `reply.send` wait in the stream.
 *
 * Backpressure: what the client has not read waits here, and once more than `maxBufferedBytes` wait the client is
 * dropped (`onDrop`, then the response is destroyed): one slow reader must not make the process hold an unbounded
 * backlog for it. Node's own socket buffer (writableHighWaterMark, 16 KiB) comes on top.
 */
export class SseStream {
  readonly body = new PassThrough()
  private heartbeat: NodeJS.Timeout | null = null
  private pendingId: string | null = null
  private ended = false

  constructor(private readonly options: { maxBufferedBytes: number; heartbeatMs: number; onDrop: () => void }) {
    // The client reconnects after 1 s (EventSource's default is about 3 s).
    this.write('retry: 1000\n\n')
    this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs)
    this.heartbeat.unref()
  }

  get open(): boolean {
    return !this.ended
  }

  /** Complete SSE messages that carry ids (they supersede a cursor waiting for the heartbeat). */
  messages(frames: string): void {
    this.pendingId = null
    this.write(frames)
  }

  private write(frames: string): void {
    if (this.ended) return
    if (this.body.writableLength + this.body.readableLength > this.options.maxBufferedBytes) {
      this.stop()
      this.options.onDrop()
      this.body.destroy()
      return
    }
    this.body.write(frames)
  }

  /** A message that only moves the client's last event id (no event is dispatched: its data is empty). */
  id(cursor: string, now = false): void {
    if (now) {
      this.pendingId = null
      this.write(`id: ${cursor}\n\n`)
    } else {
      this.pendingId = cursor
    }
  }

  /** Ends the response (shutdown). */
  end(): void {
    if (this.ended) return
    this.stop()
    this.body.end()
  }

  /** Stops the heartbeat; for a client that went away (the body is destroyed with the response). */
  stop(): void {
    this.ended = true
    if (this.heartbeat) clearInterval(this.heartbeat)
    this.heartbeat = null
  }

  // A comment line keeps proxies and load balancers from closing an idle stream; a cursor that moved without an event
  // (everything filtered out) goes with it instead, so a reconnect does not reread from further back than needed.
  private beat() {
    const id = this.pendingId
    this.pendingId = null
    this.write(id ? `id: ${id}\n\n` : ': keepalive\n\n')
  }
}

/** An SSE message: `data` must be one line (JSON.stringify's output is). */
export const sseMessage = (id: string, event: string, data: string) => `id: ${id}\nevent: ${event}\ndata: ${data}\n\n`
