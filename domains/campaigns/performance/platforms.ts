/**
 * The ad platform a lead's acquisition belongs to, in the media plans' platform keys (media-plans/benchmarks.ts), from
 * the source and channel analytics classified for its lead.created event (domains/analytics/enrichment). A
 * click-to-WhatsApp ad, or anything arriving over WhatsApp, is `whatsapp`; Facebook, Instagram, Messenger and Threads
 * are Meta's; an unknown source keeps its own name (a plan may have an allocation of that name), none is `unknown`.
 */
const ALIASES: Readonly<Record<string, string>> = {
  facebook: 'meta', instagram: 'meta', messenger: 'meta', threads: 'meta', meta: 'meta', fb: 'meta', ig: 'meta',
  google: 'google', adwords: 'google', 'google ads': 'google', twitter: 'x', x: 'x', youtube: 'youtube', tiktok: 'tiktok',
  linkedin: 'linkedin', pinterest: 'pinterest', whatsapp: 'whatsapp', display: 'display', ctv: 'ctv',
}

export function platformOf(source: string | null | undefined, channel: string | null | undefined): string {
  if (channel === 'whatsapp') return 'whatsapp'
  const s = (source ?? '').trim().toLowerCase()
  if (!s) return 'unknown'
  return ALIASES[s] ?? (s.replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 30) || 'unknown')
}
