import type { TemplateBody } from './schemas.js'

/**
 * Built-in plan templates: starting points every tenant sees (id `builtin:<key>`), beside the ones a tenant saves
 * (campaigns.media_plan_templates). A plan made from one copies these fields; the create body's own fields win.
 * Splits follow the usual shape of a lead-generation budget for the niche; CPL and CTR come from the benchmarks.
 */
export const BUILTIN_TEMPLATES: readonly { key: string; name: string; description: string; body: TemplateBody }[] = [
  {
    key: 'lead-gen-whatsapp',
    name: 'Lead generation, WhatsApp first',
    description: 'Click-to-WhatsApp on Meta with search to catch intent; for businesses that close in conversation.',
    body: {
      goal: 'leads', niche: 'general', leadToSalePct: '10', manualSplit: false,
      allocations: [{ platform: 'whatsapp', percent: '50' }, { platform: 'meta', percent: '25' }, { platform: 'google', percent: '25' }],
    },
  },
  {
    key: 'health-clinic',
    name: 'Health clinic, local',
    description: 'Search for people looking for a treatment, Meta and WhatsApp for the neighbourhood.',
    body: {
      goal: 'leads', niche: 'health', leadToSalePct: '15', manualSplit: false,
      allocations: [{ platform: 'google', percent: '40' }, { platform: 'meta', percent: '30' }, { platform: 'whatsapp', percent: '30' }],
    },
  },
  {
    key: 'b2b-saas',
    name: 'B2B software',
    description: 'LinkedIn for the buying committee, search for intent, a little display for retargeting.',
    body: {
      goal: 'leads', niche: 'b2b_saas', leadToSalePct: '5', manualSplit: false,
      allocations: [{ platform: 'linkedin', percent: '45' }, { platform: 'google', percent: '40' }, { platform: 'display', percent: '15' }],
    },
  },
  {
    key: 'ecommerce-launch',
    name: 'E-commerce launch',
    description: 'Short-video and social reach with search and connected TV for awareness.',
    body: {
      goal: 'sales', niche: 'ecommerce', leadToSalePct: '20', manualSplit: false,
      allocations: [{ platform: 'meta', percent: '35' }, { platform: 'tiktok', percent: '30' }, { platform: 'google', percent: '25' }, { platform: 'ctv', percent: '10' }],
    },
  },
]

export const BUILTIN_PREFIX = 'builtin:'
export const builtinTemplate = (id: string) => (id.startsWith(BUILTIN_PREFIX) ? BUILTIN_TEMPLATES.find((t) => `${BUILTIN_PREFIX}${t.key}` === id) ?? null : null)
