/**
 * What the boundary's unstorable-text checks (lib/http/safe-json.ts) cost, against baselines in the same run
 * (loopback only, bounded in time, no database).
 *
 * Part 1, the walk alone: findUnstorableText on a form body, a 60 KB API body full of accents and emoji (the slow
 * path of the per-string scan) and a 64-level nested body, against JSON.parse of the same text.
 * Part 2, per request: a bare Fastify route taking a JSON body and a query string, without and with the checks
 * registered, alternated (A B A B) so load from elsewhere on the machine hits both alike.
 *
 * Environment: BENCH_SECONDS (per HTTP round, default 2), BENCH_ROUNDS (pairs of rounds, 4), BENCH_CONNECTIONS (50).
 */
import Fastify from 'fastify'
import { findUnstorableText, MAX_BODY_DEPTH, registerStorableTextChecks } from '../../lib/http/safe-json.js'
import { loadTest, printComparison, type LoadResult } from './harness.js'

const SECONDS = Math.min(Number(process.env.BENCH_SECONDS ?? 2), 30)
const ROUNDS = Math.min(Number(process.env.BENCH_ROUNDS ?? 4), 10)
const CONNECTIONS = Math.min(Number(process.env.BENCH_CONNECTIONS ?? 50), 500)

const formBody = JSON.stringify({
  name: 'Lead 123', email: 'lead123.abc@example.com', phone: '(11) 91234-5678', plan: 'premium', consent: true, utm_source: 'bench', started_at: Date.now(),
})
const bigBody = JSON.stringify({
  document: { nodes: Array.from({ length: 300 }, (_, i) => ({ id: `n${i}`, text: `Olá, tudo bem? Conceição 😀👍🏽 ${'texto '.repeat(20)}`, next: [`n${i + 1}`] })) },
})
let deep: unknown = 1
for (let i = 0; i < MAX_BODY_DEPTH - 1; i++) deep = { a: deep }
const deepBody = JSON.stringify({ deep })

/** Microseconds per call, best of five rounds (the least disturbed by other load). */
function timeIt(fn: () => unknown, iterations: number): number {
  let best = Infinity
  for (let round = 0; round < 5; round++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) fn()
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1000 / iterations)
  }
  return best
}

console.log('\nPart 1: the walk alone, against JSON.parse of the same text\n')
console.log(['body', 'bytes', 'JSON.parse µs', 'walk µs', 'walk / parse'].join('  |  '))
for (const [name, text, iterations] of [['form submission', formBody, 50_000], ['60 KB, accents and emoji', bigBody, 300], [`${MAX_BODY_DEPTH} levels deep`, deepBody, 20_000]] as const) {
  const parsed = JSON.parse(text) as unknown
  if (findUnstorableText(parsed).length !== 0) throw new Error(`${name}: the clean body was refused`)
  const parse = timeIt(() => JSON.parse(text), iterations)
  const walk = timeIt(() => findUnstorableText(parsed), iterations)
  console.log([name, String(Buffer.byteLength(text)), parse.toFixed(2), walk.toFixed(2), `${(walk / parse).toFixed(2)}×`].join('  |  '))
}

async function serve(withChecks: boolean) {
  const app = Fastify({ logger: false })
  if (withChecks) registerStorableTextChecks(app)
  app.post('/forms/:publicKey/submissions', async (_req, reply) => reply.code(201).send({ status: 'accepted' }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  return { app, url: `http://127.0.0.1:${port}/forms/fk_bench/submissions?utm_source=bench&ref=home` }
}

console.log(`\nPart 2: per request, ${CONNECTIONS} connections, ${SECONDS} s per round, rounds alternated\n`)
const bare = await serve(false)
const checked = await serve(true)
const rounds: { bare: LoadResult[]; checked: LoadResult[] } = { bare: [], checked: [] }
const request = { method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: formBody, connections: CONNECTIONS, durationSeconds: SECONDS }
for (let round = 0; round < ROUNDS; round++) {
  rounds.bare.push(await loadTest({ name: 'bare route', url: bare.url, ...request }))
  rounds.checked.push(await loadTest({ name: 'with the checks', url: checked.url, ...request }))
}
const mean = (name: string, results: LoadResult[]): LoadResult => ({
  name,
  requestsPerSecond: results.reduce((s, r) => s + r.requestsPerSecond, 0) / results.length,
  p50Ms: results.reduce((s, r) => s + r.p50Ms, 0) / results.length,
  p99Ms: results.reduce((s, r) => s + r.p99Ms, 0) / results.length,
  total: results.reduce((s, r) => s + r.total, 0),
  non2xx: results.reduce((s, r) => s + r.non2xx, 0),
  errors: results.reduce((s, r) => s + r.errors, 0),
})
printComparison([mean('bare route', rounds.bare), mean('with the checks', rounds.checked)], ['bare route'])
// Each pair ran back to back, so its ratio is the least disturbed by load elsewhere; the median of the pairs.
const ratios = rounds.bare.map((b, i) => rounds.checked[i]!.requestsPerSecond / b.requestsPerSecond).sort((x, y) => x - y)
console.log(`\nper pair: ${ratios.map((r) => r.toFixed(2)).join(', ')}; median ${ratios[Math.floor(ratios.length / 2)]!.toFixed(2)}× bare route`)
await Promise.all([bare.app.close(), checked.app.close()])
