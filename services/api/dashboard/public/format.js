// How numbers, durations and events read on the page.

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
const percent = new Intl.NumberFormat('en-US', { style: 'percent', maximumFractionDigits: 1 })

export const formatInteger = (n) => (n == null ? '—' : integer.format(n))
export const formatPercent = (r) => (r == null ? '—' : percent.format(r))

export function formatDuration(seconds) {
  if (seconds == null) return '—'
  if (seconds < 60) return `${Math.round(seconds)} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`
}

export const formatMetric = (metric, value) =>
  metric.endsWith('_rate') ? formatPercent(value) : metric.endsWith('_seconds') ? formatDuration(value) : formatInteger(value)

/** For the comparison line under a figure: "+12.5% vs previous period". */
export function formatChange(change) {
  if (change == null || !Number.isFinite(change)) return { text: 'no previous data', tone: 'flat' }
  const sign = change > 0 ? '+' : change < 0 ? '−' : '±'
  return { text: `${sign}${Math.abs(change).toFixed(1)}% vs previous period`, tone: change > 0 ? 'up' : change < 0 ? 'down' : 'flat' }
}

/** A friendlier name for the source and channel values enrichment stores. */
export function label(value) {
  if (value == null || value === '') return '(none)'
  const known = { direct: 'Direct', search: 'Search', social: 'Social', email: 'Email', paid: 'Paid', whatsapp: 'WhatsApp', referral: 'Referral' }
  return known[value] ?? value.charAt(0).toUpperCase() + value.slice(1)
}

const EVENT_LABELS = {
  'lead.created': 'New lead',
  'lead.qualified': 'Lead qualified',
  'lead.converted': 'Lead converted',
  'lead.merged': 'Leads merged',
  'lead.status_changed': 'Lead status changed',
  'form.viewed': 'Form viewed',
  'form.submitted': 'Form submitted',
  'whatsapp.message_received': 'WhatsApp message received',
  'whatsapp.message_sent': 'WhatsApp message sent',
  'whatsapp.message_delivered': 'WhatsApp message delivered',
  'whatsapp.message_read': 'WhatsApp message read',
  'whatsapp.message_failed': 'WhatsApp message failed',
  'bot.conversation_started': 'Bot conversation started',
  'bot.conversation_completed': 'Bot conversation completed',
  'bot.conversation_handed_over': 'Handed over to a person',
  pageview: 'Page view',
}
export const eventLabel = (name) => EVENT_LABELS[name] ?? name

export const eventTone = (name) =>
  name.startsWith('whatsapp.') ? 'whatsapp' : name.startsWith('lead.') ? 'lead' : name.startsWith('form.') ? 'form' : name.startsWith('bot.') ? 'bot' : 'other'

export const formatTime = (iso, timeZone) =>
  new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', timeZone }).format(new Date(iso))
