import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/**
 * A local stand-in for an OpenAI-compatible chat completions API (`POST /v1/chat/completions`, Bearer key), as the
 * assessments' AI provider calls it. It answers deterministically from the prompt (the same messages give the same
 * analysis), as a JSON object `{ narrative, recommendations }` in `choices[0].message.content` when the request asks
 * `response_format: { type: "json_object" }`, with `usage` token counts, and fails like the real API with its error
 * bodies (`{ error: { message, type, code } }`: 401 invalid_api_key, 429 rate_limit_exceeded, 500 server_error).
 *
 * Control, in-process or over HTTP (`/_emulator/...`, no auth: keep it on loopback): fail the next N requests with a
 * status, answer something that is not the JSON asked for, hold every answer (latency), list, reset.
 */

export interface AiEmulatorOptions { port?: number; host?: string; apiKeys?: string[] }

export interface ReceivedCompletion { model: string; system: string; user: string; status: number }

export interface AiEmulator {
  url: string
  /** The base URL to configure (AI_BASE_URL): `<url>/v1`. */
  baseUrl: string
  readonly completions: ReceivedCompletion[]
  failNext(status: number, times?: number): void
  /** The next N answers are 200 with prose instead of the JSON object asked for. */
  garbleNext(times?: number): void
  setLatency(ms: number): void
  reset(): void
  stop(): Promise<void>
}

const openAiError = (status: number) => {
  if (status === 401) return { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }
  if (status === 429) return { error: { message: 'Rate limit reached for requests.', type: 'requests', param: null, code: 'rate_limit_exceeded' } }
  if (status === 400) return { error: { message: 'Invalid request.', type: 'invalid_request_error', param: null, code: null } }
  return { error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } }
}

/** A deterministic analysis from the prompt: it names the band line, so a test can tell what was asked. */
function answerFor(user: string): { narrative: string; recommendations: string[] } {
  const digest = createHash('sha256').update(user).digest('hex').slice(0, 8)
  const band = /Result band: (.*)\./.exec(user)?.[1] ?? 'unknown'
  const low = [...user.matchAll(/Category "([^"]+)": low\./g)].map((m) => m[1]!)
  return {
    narrative: `[emulated ${digest}] Your result is "${band}".${low.length ? ` Focus first on ${low.join(', ')}.` : ''}`,
    recommendations: low.length ? low.map((c) => `Set one small weekly goal for ${c}.`) : ['Keep doing what works, and check again in three months.'],
  }
}

export async function startAiEmulator(options: AiEmulatorOptions = {}): Promise<AiEmulator> {
  const completions: ReceivedCompletion[] = []
  let failures: { status: number; remaining: number }[] = []
  let garbled = 0
  let latencyMs = 0
  const keys = new Set(options.apiKeys ?? [])
  const sockets = new Set<Socket>()

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  const readBody = (req: IncomingMessage) => new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })

  const complete = async (req: IncomingMessage, res: ServerResponse) => {
    const raw = await readBody(req)
    if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs))
    const auth = /^Bearer\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''))?.[1]
    let body: { model?: unknown; messages?: { role?: string; content?: unknown }[]; response_format?: { type?: string } }
    try { body = JSON.parse(raw) as typeof body } catch { return send(res, 400, openAiError(400)) }
    const system = String(body.messages?.find((m) => m.role === 'system')?.content ?? '')
    const user = String(body.messages?.find((m) => m.role === 'user')?.content ?? '')
    const model = String(body.model ?? '')
    const record = (status: number) => completions.push({ model, system, user, status })
    if (!auth || (keys.size > 0 && !keys.has(auth))) { record(401); return send(res, 401, openAiError(401)) }
    const failure = failures[0]
    if (failure) {
      if (--failure.remaining <= 0) failures.shift()
      record(failure.status)
      return send(res, failure.status, openAiError(failure.status))
    }
    if (!model || !Array.isArray(body.messages) || !user) { record(400); return send(res, 400, openAiError(400)) }
    record(200)
    const content = garbled > 0 ? (garbled--, 'Sure! Here is an analysis of your results: you did well.')
      : body.response_format?.type === 'json_object' ? JSON.stringify(answerFor(user)) : answerFor(user).narrative
    send(res, 200, {
      id: `chatcmpl-${completions.length}`, object: 'chat.completion', created: Math.floor(Date.now() / 1000), model,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: { prompt_tokens: Math.ceil((system.length + user.length) / 4), completion_tokens: Math.ceil(content.length / 4), total_tokens: Math.ceil((system.length + user.length + content.length) / 4) },
    })
  }

  const control = async (req: IncomingMessage, res: ServerResponse, path: string) => {
    const raw = await readBody(req)
    const body = raw ? JSON.parse(raw) as Record<string, unknown> : {}
    switch (`${req.method} ${path}`) {
      case 'GET /_emulator/received': return send(res, 200, { completions })
      case 'POST /_emulator/fail-next': emulator.failNext(Number(body.status ?? 500), Number(body.times ?? 1)); return send(res, 200, { ok: true })
      case 'POST /_emulator/latency': emulator.setLatency(Number(body.ms ?? 0)); return send(res, 200, { ok: true })
      case 'POST /_emulator/reset': emulator.reset(); return send(res, 200, { ok: true })
      default: return send(res, 404, { error: 'unknown control route' })
    }
  }

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://emulator').pathname
    const handle = path.startsWith('/_emulator/') ? control(req, res, path)
      : req.method === 'POST' && (path === '/v1/chat/completions' || path === '/chat/completions') ? complete(req, res)
      : Promise.resolve(send(res, 404, { error: { message: `Invalid URL (${req.method} ${path})`, type: 'invalid_request_error', param: null, code: null } }))
    handle.catch(() => { if (!res.headersSent) send(res, 500, openAiError(500)) })
  })
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve))
  const address = server.address() as AddressInfo
  const url = `http://${address.address}:${address.port}`

  const emulator: AiEmulator = {
    url,
    baseUrl: `${url}/v1`,
    completions,
    failNext(status, times = 1) { failures.push({ status, remaining: times }) },
    garbleNext(times = 1) { garbled += times },
    setLatency(ms) { latencyMs = Math.max(0, ms) },
    reset() { completions.length = 0; failures = []; garbled = 0; latencyMs = 0 },
    stop: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    }),
  }
  return emulator
}
