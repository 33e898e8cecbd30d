import { z } from 'zod'
import { type LiveFeed, LiveCursor, LiveFilters } from '../../../../domains/analytics/live.js'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { SseStream, sseMessage } from '../../../../lib/http/sse.js'
import { liveStreams, liveStreamsDropped } from '../../../../lib/metrics.js'
import type { ApiDeps } from '../../app.js'
import { tenantOf } from '../../plugins/auth.js'

// `?filters=` is JSON in the query API's grammar; a string that is not JSON is a 400 at `filters` like any bad value.
const FiltersParam = z.string().max(4000).transform((text, ctx) => {
  try {
    return JSON.parse(text) as unknown
  } catch {
    ctx.addIssue({ code: 'custom', message: 'filters must be JSON: a list of filters such as [["is","event:name",["lead.created"]]]' })
    return z.NEVER
  }
}).pipe(LiveFilters)

const LiveQuery = z.object({ filters: FiltersParam.optional() })
// Loose: the other headers (authorization, …) stay as they are for everything after validation.
const LiveHeaders = z.object({ 'last-event-id': LiveCursor.optional() }).loose()

/**
 * GET /v1/analytics/live: the tenant's events as Server-Sent Events, as they commit. Authenticated like every route
 * (Authorization header: a browser reads it with fetch(), since EventSource cannot send headers; keys never go in
 * URLs). Reconnecting with the last `id:` received as Last-Event-ID resumes without a gap (domains/analytics/live.ts).
 */
export default async function analyticsLiveRoutes(app: App, deps: ApiDeps & { liveFeed: LiveFeed }) {
  const { config, liveFeed } = deps

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['analytics'],
      summary: 'Live feed of analytics events (text/event-stream). Each message: `id: <cursor>`, `event: analytics`, `data: {id, name, occurredAt, leadId?, source, channel, country, device, properties?}`. ' +
        'Send the last id back as Last-Event-ID to resume without gaps (an event may come again: dedupe by data.id). A message with only `id:` moves the cursor; `event: reset` (data: {missedMoreThan}) means more was missed than a resume sends: reload, then follow.',
      querystring: LiveQuery,
      headers: LiveHeaders,
      response: { 200: z.unknown().describe('text/event-stream: a stream of SSE messages') },
    },
  }, async (req, reply) => {
    const { tenantId } = tenantOf(req)
    // A feature flag (lib/feature-flags.ts, Unleash when configured): the feed can be turned off per tenant.
    if (!deps.flags.isEnabled('analytics.live-feed', { tenantId, remoteAddress: req.ip })) {
      throw new AppError('FORBIDDEN', 'the live feed is turned off for this workspace (feature flag analytics.live-feed)')
    }
    if (liveFeed.streamsOf(tenantId) >= config.LIVE_MAX_STREAMS_PER_TENANT) {
      throw new AppError('RATE_LIMITED', `at most ${config.LIVE_MAX_STREAMS_PER_TENANT} live streams per tenant are open at once; close one first`, { headers: { 'retry-after': '5' } })
    }
    const stream = new SseStream({
      maxBufferedBytes: config.LIVE_MAX_BUFFERED_BYTES,
      heartbeatMs: config.LIVE_HEARTBEAT_MS,
      onDrop: () => {
        liveStreamsDropped.inc({ reason: 'slow' })
        req.log.info({ tenantId }, 'live feed: client too slow, stream dropped')
      },
    })
    let unsubscribe: (() => void) | null = null
    let gone = false
    // The client may leave while we subscribe: whichever happens second cleans up.
    reply.raw.once('close', () => {
      gone = true
      stream.stop()
      unsubscribe?.()
    })
    // The first cursor goes out at once: a client that drops before any event still resumes from when it connected.
    let started = false
    try {
      unsubscribe = await liveFeed.subscribe(tenantId, { filters: req.query.filters ?? [], after: req.headers['last-event-id'] ?? null }, {
        events: (messages) => {
          started = true
          stream.messages(messages.map((m) => sseMessage(m.cursor, 'analytics', m.data)).join(''))
        },
        // A cursor that settles events already sent goes out now, so a reconnect does not get them again.
        cursor: (cursor, settles) => {
          stream.id(cursor, settles || !started)
          started = true
        },
        reset: (cursor, limit) => {
          started = true
          stream.messages(sseMessage(cursor, 'reset', JSON.stringify({ missedMoreThan: limit })))
        },
        close: () => stream.end(),
      })
    } catch (err) {
      stream.stop()
      stream.body.destroy()
      throw err
    }
    if (gone) {
      unsubscribe()
      return reply
    }
    liveStreams.inc()
    reply.raw.once('close', () => liveStreams.dec())
    return reply
      .header('content-type', 'text/event-stream; charset=utf-8')
      // no-transform: a compressing proxy would buffer the stream; X-Accel-Buffering: nginx would too.
      .header('cache-control', 'no-cache, no-transform')
      .header('x-accel-buffering', 'no')
      .send(stream.body)
  })
}
