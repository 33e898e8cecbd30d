/**
 * Who writes an analysis. The rule-based provider is the default and the fallback: deterministic text from the
 * rubric's bands, categories and advice, offline, free. The OpenAI-compatible provider (AI_BASE_URL, AI_API_KEY,
 * AI_MODEL) asks `POST {AI_BASE_URL}/chat/completions` for a JSON object { narrative, recommendations } and refuses
 * anything else; any failure is the caller's cue to fall back to the rules.
 */
import { z } from 'zod'
import type { Config } from '../../../lib/config.js'
import type { Pattern, Tier } from './pattern.js'

export interface Analysis {
  narrative: string
  recommendations: string[]
  usage?: { promptTokens: number | null; completionTokens: number | null }
}

export interface AnalysisProvider {
  readonly name: string
  readonly model: string | null
  analyze(pattern: Pattern): Promise<Analysis>
}

export class ProviderError extends Error {
  constructor(message: string, readonly status: number | null) {
    super(message)
    this.name = 'ProviderError'
  }
}

const LEVEL_WORDS: Record<Tier, string> = { low: 'low', mid: 'moderate', high: 'high' }
const MAX_RECOMMENDATIONS = 8

/** Deterministic: the same pattern gives the same text, byte for byte. */
export const ruleBasedProvider: AnalysisProvider = {
  name: 'rules',
  model: null,
  async analyze(p: Pattern): Promise<Analysis> {
    const parts: string[] = []
    parts.push(p.band.label ? `Your ${p.assessment.type} assessment places you in the "${p.band.label}" band.` : `Your ${p.assessment.type} assessment is complete.`)
    const high = p.categories.filter((c) => c.level === 'high').map((c) => c.name)
    const low = p.categories.filter((c) => c.level === 'low').map((c) => c.name)
    if (high.length > 0) parts.push(`You scored high in ${listOf(high)}.`)
    if (low.length > 0) parts.push(`${listOf(low)} ${low.length === 1 ? 'is' : 'are'} where attention pays off most.`)
    const mid = p.categories.filter((c) => c.level === 'mid').map((c) => c.name)
    if (mid.length > 0 && high.length + low.length === 0) parts.push(`Your results are ${LEVEL_WORDS.mid} across ${listOf(mid)}.`)
    const recommendations = [...new Set(p.advice)].slice(0, MAX_RECOMMENDATIONS)
    if (recommendations.length === 0 && low.length > 0) recommendations.push(`Start with ${low[0]}: small, regular steps there move your overall result the most.`)
    return { narrative: parts.join(' '), recommendations }
  },
}

function listOf(items: string[]): string {
  if (items.length <= 1) return items.join('')
  return `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`
}

// ---------------------------------------------------------------------------------------------------------------

const ChatCompletion = z.object({
  choices: z.array(z.object({ message: z.object({ content: z.string().nullable() }) })).min(1),
  usage: z.object({ prompt_tokens: z.number().int().optional(), completion_tokens: z.number().int().optional() }).optional(),
})
const AnalysisJson = z.object({
  narrative: z.string().min(1).max(4000),
  recommendations: z.array(z.string().min(1).max(500)).max(MAX_RECOMMENDATIONS).default([]),
})

const SYSTEM_PROMPT = [
  'You write the short analysis a participant reads after finishing a questionnaire.',
  'You receive only banded results (levels and tiers, no raw answers, no names). Be kind, concrete and brief (at most 120 words).',
  'Never diagnose, never promise outcomes; suggest seeing a professional where it is prudent.',
  'Answer with a JSON object only: {"narrative": string, "recommendations": string[] (at most 5)}.',
].join(' ')

/** The prompt, from the pattern alone: equal patterns give equal prompts, which is what makes the cache exact. */
export function promptOf(p: Pattern): { system: string; user: string } {
  const lines = [
    `Assessment: ${p.assessment.name} (${p.assessment.type}).`,
    `Result band: ${p.band.label ?? 'none'}.`,
    ...p.categories.map((c) => `Category "${c.name}": ${LEVEL_WORDS[c.level]}.`),
    ...p.answers.map((a) => `Answer to "${a.text}": ${a.value}.`),
    ...p.profile.map((f) => `${f.label}: ${f.value}.`),
    ...(p.advice.length > 0 ? ['Advice from the rubric:', ...p.advice.map((a) => `- ${a}`)] : []),
  ]
  return { system: SYSTEM_PROMPT, user: lines.join('\n') }
}

export interface OpenAiOptions { baseUrl: string; apiKey: string | null; model: string; timeoutMs: number }

export function openAiCompatibleProvider(o: OpenAiOptions): AnalysisProvider {
  const base = o.baseUrl.replace(/\/+$/, '')
  return {
    name: 'openai-compatible',
    model: o.model,
    async analyze(p: Pattern): Promise<Analysis> {
      const prompt = promptOf(p)
      let res: Response
      try {
        res = await fetch(`${base}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}) },
          body: JSON.stringify({
            model: o.model,
            temperature: 0,
            response_format: { type: 'json_object' },
            messages: [{ role: 'system', content: prompt.system }, { role: 'user', content: prompt.user }],
          }),
          signal: AbortSignal.timeout(o.timeoutMs),
        })
      } catch (err) {
        throw new ProviderError(`AI provider unreachable: ${err instanceof Error ? err.name : 'error'}`, null)
      }
      const text = await res.text().catch(() => '')
      if (!res.ok) {
        // The provider's error body describes our request (key, model, quota), not the participant.
        const detail = (() => { try { return (JSON.parse(text) as { error?: { message?: string } }).error?.message } catch { return undefined } })()
        throw new ProviderError(`AI provider answered ${res.status}${detail ? `: ${detail.slice(0, 300)}` : ''}`, res.status)
      }
      const parsed = ChatCompletion.safeParse((() => { try { return JSON.parse(text) } catch { return null } })())
      if (!parsed.success) throw new ProviderError('AI provider answered an unexpected body', res.status)
      const content = parsed.data.choices[0]!.message.content ?? ''
      const analysis = AnalysisJson.safeParse((() => { try { return JSON.parse(content) } catch { return null } })())
      if (!analysis.success) throw new ProviderError('AI provider did not answer the JSON object asked for', res.status)
      return {
        narrative: analysis.data.narrative,
        recommendations: analysis.data.recommendations,
        usage: { promptTokens: parsed.data.usage?.prompt_tokens ?? null, completionTokens: parsed.data.usage?.completion_tokens ?? null },
      }
    },
  }
}

/** The configured provider: the OpenAI-compatible one when AI_BASE_URL is set, else the rules. */
export function providerFrom(config: Pick<Config, 'AI_BASE_URL' | 'AI_API_KEY' | 'AI_MODEL' | 'AI_REQUEST_TIMEOUT_MS'>): AnalysisProvider {
  if (!config.AI_BASE_URL) return ruleBasedProvider
  return openAiCompatibleProvider({ baseUrl: config.AI_BASE_URL, apiKey: config.AI_API_KEY ?? null, model: config.AI_MODEL, timeoutMs: config.AI_REQUEST_TIMEOUT_MS })
}
