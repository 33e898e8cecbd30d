import { z } from 'zod'
import { classifyGraphError, GraphApiError } from '../graph/client.js'
import { titleFromMessage } from '../graph/errors.js'

/**
 * Submits a message template for Meta's review: `POST /{version}/{waba_id}/message_templates`. Meta answers with
 * the template id and a first status (usually PENDING); the verdict arrives later as a
 * `message_template_status_update` webhook, which inbound processing applies to whatsapp.templates.
 */
export interface SubmitTemplateInput {
  baseUrl: string
  apiVersion: string
  accessToken: string
  wabaId: string
  template: { name: string; language: string; category: string; components: unknown }
  timeoutMs?: number
  fetch?: typeof fetch
}

const Submitted = z.object({ id: z.string().min(1), status: z.string().default('PENDING'), category: z.string().optional() })
const ErrorBody = z.object({
  error: z.object({ message: z.string().default(''), code: z.coerce.number().int().optional(), error_subcode: z.coerce.number().int().optional(), error_user_msg: z.string().optional(), fbtrace_id: z.string().optional() }),
})

export async function submitTemplate(input: SubmitTemplateInput): Promise<{ metaTemplateId: string; status: string; category: string | null }> {
  const url = `${input.baseUrl.replace(/\/+$/, '')}/${input.apiVersion}/${encodeURIComponent(input.wabaId)}/message_templates`
  let res: Response
  let text: string
  try {
    res = await (input.fetch ?? fetch)(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${input.accessToken}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(input.template),
      signal: AbortSignal.timeout(input.timeoutMs ?? 15_000),
    })
    text = await res.text()
  } catch (err) {
    throw new GraphApiError({ httpStatus: null, code: null, subcode: null, title: 'Network error', message: `template submission failed: ${err instanceof Error ? err.message : String(err)}`, details: null, fbtraceId: null, disposition: 'retry', cause: err })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  if (res.ok) {
    const ok = Submitted.safeParse(json)
    if (ok.success) return { metaTemplateId: ok.data.id, status: ok.data.status, category: ok.data.category ?? null }
    throw new GraphApiError({ httpStatus: res.status, code: null, subcode: null, title: 'Unexpected response', message: 'Graph API answered 2xx without a template id', details: null, fbtraceId: null, disposition: 'fail' })
  }
  const e = ErrorBody.safeParse(json)
  const code = e.success ? (e.data.error.code ?? null) : null
  return Promise.reject(new GraphApiError({
    httpStatus: res.status,
    code,
    subcode: e.success ? (e.data.error.error_subcode ?? null) : null,
    title: e.success ? titleFromMessage(e.data.error.message) : `HTTP ${res.status}`,
    message: e.success ? e.data.error.message || `HTTP ${res.status}` : `Graph API answered HTTP ${res.status}: ${text.slice(0, 200)}`,
    details: e.success ? (e.data.error.error_user_msg ?? null) : null,
    fbtraceId: e.success ? (e.data.error.fbtrace_id ?? null) : null,
    disposition: classifyGraphError(res.status, code),
  }))
}
