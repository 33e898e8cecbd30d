import rateLimit from '@fastify/rate-limit'
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { fastAnswerBody, fastTokenParams } from '../../../../domains/assessments/answer-fast-path.js'
import { fastStateJson } from '../../../../domains/assessments/state-json.js'
import { AnswerBody, ProfileBody, SessionStateView, SessionTokenParams, StartWebSessionBody } from '../../../../domains/assessments/schemas.js'
import {
  backWebSession, completeWebSession, inWebSession, profileWebSession, startWebSession, viewWebSession,
} from '../../../../domains/assessments/service.js'
import { AnalysisView } from '../../../../domains/assessments/ai/schemas.js'
import { sessionAnalysis } from '../../../../domains/assessments/ai/service.js'
import { AnswerInbox } from '../../../../domains/assessments/answer-inbox.js'
import type { WebhooksDeps } from '../../app.js'

const KeyParams = z.object({ publicKey: z.string().min(1).max(100) })
const TokenParams = SessionTokenParams

type Validator = (data: unknown) => { value?: unknown; error?: unknown }
/**
 * The token in the path and the answer's body: their common, valid case checked without zod (answer-fast-path.ts),
 * the same value either way; anything else is zod's, which refuses it with the field paths as every route does.
 */
const fastValidatorCompiler = (route: { httpPart?: string; schema: unknown }) => {
  const zod = validatorCompiler(route as never) as Validator
  const fast = route.httpPart === 'params' ? fastTokenParams : route.httpPart === 'body' && route.schema === AnswerBody ? fastAnswerBody : null
  if (!fast) return zod
  return ((data: unknown) => {
    const value = fast(data)
    return value === null ? zod(data) : { value }
  }) as Validator
}

/** A session's state written without zod when it is exactly the schema's shape (state-json.ts, the same bytes); else zod's. */
const stateSerializerCompiler = (route: { schema: unknown; method: string; url: string }) => {
  const zod = serializerCompiler(route as never) as (data: unknown) => string
  return (data: unknown) => fastStateJson(data) ?? zod(data)
}

/**
 * Public assessment sessions on the web: start by the assessment's public key (the answer carries the resume token,
 * shown once; stored as its sha256), then every call names the session by that token in the path (access logs
 * redact it), from any device. Every answer is the session's state: the current question, progress, what the
 * profile still needs and, once completed, the result.
 */
export default async function assessmentSessionRoutes(app: App, deps: WebhooksDeps) {
  const { config, sql } = deps
  // Answers are group-committed: many participants' answers in one transaction, each answered after its commit.
  const answers = deps.answers ?? new AnswerInbox(sql)
  await app.register(rateLimit, { global: false, redis: deps.redis ?? undefined, nameSpace: 'wa-assessments-rl:', skipOnError: true })
  const starts = app.createRateLimit({ max: config.ASSESSMENTS_STARTS_PER_IP_PER_HOUR, timeWindow: 3_600_000, keyGenerator: (req) => `start:${req.ip}` })
  // Token guesses are hopeless (256 bits), but each costs a lookup: bounded per IP like any page.
  const perIp = app.createRateLimit({ max: config.ASSESSMENTS_RATE_LIMIT_PER_IP_PER_MINUTE, timeWindow: 60_000, keyGenerator: (req) => `session:${req.ip}` })
  const limited = async (limit: typeof perIp, req: Parameters<typeof perIp>[0], what: string) => {
    const state = await limit(req)
    if (!state.isAllowed && state.isExceeded) {
      const retry = String(Math.max(1, state.ttlInSeconds))
      throw new AppError('RATE_LIMITED', `too many ${what}; retry in ${retry} s`, { headers: { 'retry-after': retry } })
    }
  }
  const tags = ['assessments']
  const State = { 200: SessionStateView }

  app.post('/:publicKey/sessions', {
    config: { access: 'public' },
    schema: {
      tags, summary: 'Start a session of a published assessment (profile fields may come now or later). The resume token is shown once.',
      params: KeyParams, body: StartWebSessionBody, response: { 201: z.object({ token: z.string(), state: SessionStateView }) },
    },
  }, async (req, reply) => {
    await limited(starts, req, 'sessions started from this address')
    return reply.code(201).send(await startWebSession(sql, req.params.publicKey, req.body))
  })

  // Every call on a session: the token in the path, bounded per IP, answering the session's state.
  const sessionRoute = <B extends z.ZodType | undefined>(method: 'GET' | 'POST' | 'PUT', path: string, summary: string, body: B,
    run: (token: string, body: B extends z.ZodType ? z.infer<B> : undefined) => Promise<SessionStateView>) =>
    app.route({
      method, url: `/sessions/:token${path}`, config: { access: 'public' }, validatorCompiler: fastValidatorCompiler as never,
      serializerCompiler: stateSerializerCompiler as never,
      schema: { tags, summary, params: TokenParams, ...(body ? { body } : {}), response: State },
      handler: async (req) => {
        await limited(perIp, req, 'requests')
        return run((req.params as { token: string }).token, req.body as never)
      },
    })

  sessionRoute('GET', '', 'Resume (on any device): the current question, progress, missing profile fields, the result once completed.', undefined,
    (token) => viewWebSession(sql, token))
  sessionRoute('POST', '/answers', 'Answer the current question (409 for another question or a completed session, 400 for an answer the question does not allow). The last answer completes the session.', AnswerBody,
    (token, body) => answers.answer(token, body))
  sessionRoute('POST', '/back', 'Go back one question (its answer is kept until answered again); 409 at the first question.', undefined,
    (token) => backWebSession(sql, token))
  sessionRoute('PUT', '/profile', 'Set profile fields (merged). When the session waited only for them, it completes.', ProfileBody,
    (token, body) => profileWebSession(sql, token, body.demographics))
  sessionRoute('POST', '/complete', 'Complete (idempotent: a completed session answers its result again); 409 while a question or a required profile field is missing.', undefined,
    (token) => completeWebSession(sql, token))

  app.get('/sessions/:token/analysis', {
    config: { access: 'public' },
    schema: { tags, summary: "The completed session's analysis: pending until the analysis job has run (poll), then its narrative and recommendations.", params: TokenParams, response: { 200: AnalysisView } },
  }, async (req) => {
    await limited(perIp, req, 'requests')
    return inWebSession(sql, req.params.token, (tx, ctx) => sessionAnalysis(tx, ctx.session.id))
  })
}
