/**
 * Benchmark CPL, CTR and CPC per platform and niche: what a plan's allocation uses when it gives none of its own.
 * Figures are USD, typical of 2024–2026 lead-generation campaigns (industry reports: WordStream/LocaliQ search and
 * social benchmarks, LinkedIn and TikTok advertiser guides), rounded; they are starting points for a plan, not
 * promises. A plan in another currency gets them as they are plus a warning (estimates.ts) to enter its own CPL.
 *
 * CPL: cost per lead (currency units). CTR: clicks per 100 impressions (percent). CPC: cost per click.
 * A niche missing for a platform falls back to the platform's `general` row.
 */

export const BENCHMARK_CURRENCY = 'USD'

export const PLATFORMS = ['meta', 'google', 'tiktok', 'youtube', 'linkedin', 'display', 'ctv', 'whatsapp', 'pinterest', 'x'] as const
export type Platform = (typeof PLATFORMS)[number]

export const NICHES = ['general', 'health', 'wealth', 'education', 'real_estate', 'ecommerce', 'b2b_saas', 'local_services', 'automotive'] as const
export type Niche = (typeof NICHES)[number]

export interface Benchmark { cpl: string; ctr: string; cpc: string }

type Table = Record<Platform, Partial<Record<Niche, Benchmark>> & { general: Benchmark }>

export const BENCHMARKS: Table = {
  meta: {
    general: { cpl: '22.00', ctr: '1.20', cpc: '1.10' },
    health: { cpl: '28.00', ctr: '0.90', cpc: '1.30' },
    wealth: { cpl: '42.00', ctr: '0.70', cpc: '2.40' },
    education: { cpl: '18.00', ctr: '1.10', cpc: '0.90' },
    real_estate: { cpl: '16.00', ctr: '1.50', cpc: '0.95' },
    ecommerce: { cpl: '14.00', ctr: '1.40', cpc: '0.80' },
    b2b_saas: { cpl: '55.00', ctr: '0.80', cpc: '2.80' },
    local_services: { cpl: '20.00', ctr: '1.30', cpc: '1.00' },
    automotive: { cpl: '24.00', ctr: '1.00', cpc: '1.20' },
  },
  google: {
    general: { cpl: '45.00', ctr: '6.00', cpc: '3.50' },
    health: { cpl: '60.00', ctr: '5.50', cpc: '3.90' },
    wealth: { cpl: '90.00', ctr: '4.50', cpc: '6.20' },
    education: { cpl: '55.00', ctr: '5.80', cpc: '3.20' },
    real_estate: { cpl: '70.00', ctr: '7.50', cpc: '2.30' },
    ecommerce: { cpl: '30.00', ctr: '6.30', cpc: '1.60' },
    b2b_saas: { cpl: '120.00', ctr: '4.00', cpc: '6.50' },
    local_services: { cpl: '40.00', ctr: '6.80', cpc: '4.20' },
    automotive: { cpl: '38.00', ctr: '6.50', cpc: '2.40' },
  },
  tiktok: {
    general: { cpl: '25.00', ctr: '0.90', cpc: '1.00' },
    ecommerce: { cpl: '18.00', ctr: '1.10', cpc: '0.70' },
    education: { cpl: '20.00', ctr: '0.95', cpc: '0.85' },
  },
  youtube: {
    general: { cpl: '48.00', ctr: '0.65', cpc: '3.20' },
  },
  linkedin: {
    general: { cpl: '95.00', ctr: '0.50', cpc: '5.60' },
    b2b_saas: { cpl: '110.00', ctr: '0.55', cpc: '6.40' },
    wealth: { cpl: '120.00', ctr: '0.45', cpc: '7.20' },
  },
  display: {
    general: { cpl: '65.00', ctr: '0.45', cpc: '0.65' },
  },
  ctv: {
    general: { cpl: '150.00', ctr: '0.30', cpc: '9.00' },
  },
  whatsapp: {
    // Click-to-WhatsApp ads bought on Meta: a lead is a conversation started, cheaper per lead than a form.
    general: { cpl: '9.00', ctr: '1.20', cpc: '0.90' },
    health: { cpl: '11.00', ctr: '1.00', cpc: '1.00' },
    real_estate: { cpl: '8.00', ctr: '1.40', cpc: '0.80' },
  },
  pinterest: {
    general: { cpl: '35.00', ctr: '0.40', cpc: '1.50' },
  },
  x: {
    general: { cpl: '40.00', ctr: '0.80', cpc: '1.40' },
  },
}

/** The benchmark for a platform and niche: the niche's own row, else the platform's general one. Null for an unknown platform. */
export function benchmarkFor(platform: string, niche: string): Benchmark | null {
  const rows = (BENCHMARKS as Record<string, Partial<Record<string, Benchmark>> | undefined>)[platform]
  if (!rows) return null
  return rows[niche] ?? rows.general ?? null
}
