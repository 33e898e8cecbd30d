// The admin dashboard: sign in with an API key, pick a date range, read the analytics API, follow the live feed.
import * as api from './api.js'
import { COLORS, drawBars, drawFunnel, drawRates, drawSeries, legend } from './charts.js'
import { eventLabel, eventTone, formatChange, formatInteger, formatMetric, formatPercent, formatTime, label } from './format.js'

const $ = (selector) => document.querySelector(selector)
const REFRESH_MS = 60_000
const LIVE_MAX = 60
const MESSAGES = ['lead.created', 'whatsapp.message_received', 'whatsapp.message_sent']
const DELIVERY = ['whatsapp.message_sent', 'whatsapp.message_delivered', 'whatsapp.message_read', 'whatsapp.message_failed']
const FUNNEL = ['lead.created', 'lead.qualified', 'lead.converted']
const KPI_METRICS = ['visitors', 'form_conversion_rate', 'delivery_rate', 'read_rate', 'median_first_response_seconds']
const BOT = ['bot.conversation_started', 'bot.conversation_completed', 'bot.conversation_handed_over']

const state = { range: '30d', custom: null, tenant: null, forms: new Map(), loading: null, live: null, timer: null }

// ---------------------------------------------------------------------------------------------------------------
// Signing in and out.

async function start() {
  $('#signin-form').addEventListener('submit', signIn)
  $('#signout').addEventListener('click', signOut)
  for (const button of document.querySelectorAll('[data-range]')) button.addEventListener('click', () => chooseRange(button.dataset.range))
  $('#custom-range').addEventListener('submit', (e) => {
    e.preventDefault()
    const from = $('#range-from').value
    const to = $('#range-to').value
    if (from && to && from <= to) { state.custom = [from, to]; state.range = 'custom'; refresh() }
  })
  const key = api.storedKey()
  if (!key) return showSignIn()
  try {
    await enter(await api.me(key))
  } catch (err) {
    if (err.status === 401 || err.status === 403) api.forgetKey()
    showSignIn(err.status === 401 ? 'Your session has ended: sign in again.' : err.message)
  }
}

async function signIn(event) {
  event.preventDefault()
  const input = $('#api-key')
  const key = input.value.trim()
  const error = $('#signin-error')
  error.hidden = true
  if (!key) return
  $('#signin-submit').disabled = true
  try {
    const who = await api.me(key)
    api.storeKey(key)
    input.value = ''
    await enter(who)
  } catch (err) {
    error.textContent = err.status === 401 ? 'That key was not accepted.' : err.status === 429 ? err.message : `Could not sign in: ${err.message}`
    error.hidden = false
  } finally {
    $('#signin-submit').disabled = false
  }
}

function signOut() {
  api.forgetKey()
  state.live?.abort()
  clearInterval(state.timer)
  $('#live').replaceChildren()
  showSignIn()
}

function showSignIn(message) {
  $('#app').hidden = true
  $('#signin').hidden = false
  document.body.dataset.state = 'signed-out'
  const error = $('#signin-error')
  error.hidden = !message
  if (message) error.textContent = message
  $('#api-key').focus()
}

async function enter(who) {
  state.tenant = who.tenant
  $('#tenant-name').textContent = who.tenant.name
  $('#tenant-zone').textContent = `${who.tenant.timezone} · ${who.apiKey.role === 'admin' ? 'admin' : 'read-only'} key`
  $('#signin').hidden = true
  $('#app').hidden = false
  state.forms = await loadFormNames()
  startLive()
  clearInterval(state.timer)
  state.timer = setInterval(() => refresh({ quiet: true }), REFRESH_MS)
  await refresh()
}

async function loadFormNames() {
  try {
    const page = await fetch('/v1/forms?limit=100', { headers: { authorization: `Bearer ${api.storedKey()}` } }).then((r) => (r.ok ? r.json() : { data: [] }))
    return new Map((page.data ?? []).map((f) => [f.id, f.name]))
  } catch {
    return new Map()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The date range.

function chooseRange(range) {
  $('#custom-range').hidden = range !== 'custom'
  if (range === 'custom') {
    markRange('custom')
    if (!$('#range-from').value) {
      const today = new Date().toISOString().slice(0, 10)
      $('#range-to').value = today
      $('#range-from').value = new Date(Date.now() - 13 * 86_400_000).toISOString().slice(0, 10)
    }
    return
  }
  state.range = range
  refresh()
}

const markRange = (range) => {
  for (const b of document.querySelectorAll('[data-range]')) b.setAttribute('aria-pressed', String(b.dataset.range === range))
}

/** What the query API takes: a named period, or two dates (inclusive, in the tenant's zone). */
const dateRange = () => (state.range === 'custom' ? state.custom : state.range)
const bucket = () => (state.range === 'day' ? 'time:hour' : 'time:day')

const RANGE_NAMES = { day: 'Today', '7d': 'Last 7 days', '30d': 'Last 30 days', month: 'This month' }

// ---------------------------------------------------------------------------------------------------------------
// Loading: every widget's query at once; a newer load cancels an older one.

async function refresh({ quiet = false } = {}) {
  markRange(state.range)
  state.loading?.abort()
  const controller = new AbortController()
  state.loading = controller
  const signal = controller.signal
  if (!quiet) document.body.dataset.state = 'loading'
  const range = dateRange()
  const q = (body) => api.query({ dateRange: range, ...body }, signal)
  try {
    const [kpis, newLeads, series, rates, delivery, sources, channels, funnel, formEvents, formRates, bot, botRates] = await Promise.all([
      q({ metrics: KPI_METRICS, compare: 'previous_period' }),
      q({ metrics: ['events'], filters: [['is', 'event:name', ['lead.created']]], compare: 'previous_period' }),
      q({ metrics: ['events'], dimensions: [bucket(), 'event:name'], filters: [['is', 'event:name', MESSAGES]] }),
      q({ metrics: ['delivery_rate', 'read_rate'], dimensions: [bucket()] }),
      q({ metrics: ['events'], dimensions: ['event:name'], filters: [['is', 'event:name', DELIVERY]] }),
      acquisition('visit:source', q),
      acquisition('visit:channel', q),
      api.funnel({ steps: FUNNEL.join(','), dateRange: Array.isArray(range) ? range.join(',') : range, window: '30d' }, signal),
      q({ metrics: ['events'], dimensions: ['event:form', 'event:name'], filters: [['is', 'event:name', ['form.viewed', 'form.submitted']]] }),
      q({ metrics: ['form_conversion_rate'], dimensions: ['event:form'] }),
      q({ metrics: ['events'], dimensions: ['event:name'], filters: [['is', 'event:name', BOT]] }),
      q({ metrics: ['bot_completion_rate', 'bot_handover_rate'] }),
    ])
    if (signal.aborted) return
    renderHead(kpis.meta)
    renderKpis(kpis, newLeads)
    // The funnel card sets the row's height, which the series chart then fills.
    drawFunnel($('#funnel'), funnel.steps, eventLabel)
    renderBot(bot, botRates)
    renderSeries(series, kpis.meta)
    renderDelivery(rates, delivery, kpis.meta)
    drawBars($('#sources'), sources, { name: (v) => (v ? label(v) : 'Direct / none'), columns: ['visitors', 'leads'] })
    drawBars($('#channels'), channels, { name: label, columns: ['visitors', 'leads'] })
    renderForms(formEvents, formRates)
    $('#load-error').hidden = true
    document.body.dataset.state = 'ready'
  } catch (err) {
    if (signal.aborted) return
    if (err.status === 401) return signOut()
    $('#load-error').textContent = `Could not load the analytics: ${err.message}`
    $('#load-error').hidden = false
    document.body.dataset.state = 'error'
  }
}

function renderHead(meta) {
  const name = state.range === 'custom' ? 'Custom range' : RANGE_NAMES[state.range]
  const first = localDate(meta.dateRange.from, meta.timezone)
  const last = localDate(new Date(meta.dateRange.to).getTime() - 1, meta.timezone)
  $('#range-label').textContent = `${name} · ${first === last ? shortDate(first) : `${shortDate(first)} – ${shortDate(last)}`} (${meta.timezone})`
  const asOf = meta.watermark ? `rolled up to ${formatTime(meta.watermark, meta.timezone)}` : 'not rolled up yet'
  $('#freshness').textContent = `Source: ${meta.source} · ${asOf} · updated ${formatTime(new Date().toISOString(), meta.timezone)}`
}

/** A calendar date (YYYY-MM-DD) as people read it: 2 Nov 2026. */
const shortDate = (day) => new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' }).format(new Date(`${day}T12:00:00Z`))

function renderKpis(kpis, newLeads) {
  const row = kpis.results[0] ?? { metrics: [], comparison: null }
  const values = { leads: { value: newLeads.results[0]?.metrics[0] ?? 0, change: newLeads.results[0]?.comparison?.change?.[0] } }
  KPI_METRICS.forEach((m, i) => { values[m] = { value: row.metrics[i] ?? null, change: row.comparison?.change?.[i] } })
  for (const card of document.querySelectorAll('[data-kpi]')) {
    const metric = card.dataset.kpi
    const { value, change } = values[metric]
    const el = card.querySelector('[data-value]')
    el.dataset.value = value == null ? '' : String(value)
    el.textContent = formatMetric(metric, value)
    const c = formatChange(change)
    // Slower answers are worse: the first-response time going up is bad news.
    const tone = metric.endsWith('_seconds') ? ({ up: 'down', down: 'up', flat: 'flat' })[c.tone] : c.tone
    const changeEl = card.querySelector('[data-change]')
    changeEl.textContent = c.text
    changeEl.dataset.tone = tone
  }
}

/** The local calendar date (YYYY-MM-DD) of an instant in the tenant's zone. */
const localDate = (instant, timeZone) =>
  new Intl.DateTimeFormat('en-CA', { year: 'numeric', month: '2-digit', day: '2-digit', timeZone }).format(new Date(instant))

/** The local hour (YYYY-MM-DDTHH:00:00, as time:hour answers) of an instant in the tenant's zone. */
const localHour = (instant, timeZone) => {
  const hour = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', hourCycle: 'h23', timeZone }).format(new Date(instant))
  return `${localDate(instant, timeZone)}T${hour.padStart(2, '0')}:00:00`
}

/**
 * Every bucket of the range in order, including the empty ones the API leaves out, as [key, label]. meta.dateRange
 * is [from, to) as instants: its days are the local dates from `from` to the last moment before `to`. Hours after
 * the current one are left out (they have not happened).
 */
function buckets(meta) {
  const from = localDate(meta.dateRange.from, meta.timezone)
  const to = localDate(new Date(meta.dateRange.to).getTime() - 1, meta.timezone)
  const days = []
  for (let d = new Date(`${from}T00:00:00Z`); d.toISOString().slice(0, 10) <= to && days.length < 400; d = new Date(d.getTime() + 86_400_000)) days.push(d.toISOString().slice(0, 10))
  if (bucket() === 'time:day') return days.map((d) => [d, dayLabel(d)])
  const now = localHour(Date.now(), meta.timezone)
  return days.flatMap((d) => Array.from({ length: 24 }, (_, h) => `${d}T${String(h).padStart(2, '0')}:00:00`))
    .filter((k) => k <= now).map((k) => [k, k.slice(11, 16)])
}

const dayLabel = (day) => new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', timeZone: 'UTC' }).format(new Date(`${day}T12:00:00Z`))

const bucketKey = (value) => (bucket() === 'time:day' ? String(value).slice(0, 10) : String(value).slice(0, 19))

function renderSeries(series, meta) {
  const keys = buckets(meta)
  const index = new Map(keys.map(([k], i) => [k, i]))
  const lines = [
    { name: 'lead.created', label: 'New leads', color: COLORS.leads },
    { name: 'whatsapp.message_received', label: 'Messages received', color: COLORS.received },
    { name: 'whatsapp.message_sent', label: 'Messages sent', color: COLORS.sent },
  ].map((l) => ({ ...l, values: keys.map(() => 0) }))
  for (const r of series.results) {
    const line = lines.find((l) => l.name === r.dimensions[1])
    const i = index.get(bucketKey(r.dimensions[0]))
    if (line && i !== undefined) line.values[i] += r.metrics[0] ?? 0
  }
  const container = $('#timeseries')
  container.dataset.points = String(keys.length)
  drawSeries(container, { labels: keys.map(([, l]) => l), series: lines })
  legend($('#timeseries-legend'), lines.map((l) => ({ label: l.label, color: l.color, total: l.values.reduce((a, b) => a + b, 0) })))
}

function renderDelivery(rates, delivery, meta) {
  const keys = buckets(meta)
  const index = new Map(keys.map(([k], i) => [k, i]))
  const delivered = keys.map(() => null)
  const read = keys.map(() => null)
  for (const r of rates.results) {
    const i = index.get(bucketKey(r.dimensions[0]))
    if (i === undefined) continue
    delivered[i] = r.metrics[0]
    read[i] = r.metrics[1]
  }
  drawRates($('#delivery'), { labels: keys.map(([, l]) => l), series: [{ label: 'Delivered', color: COLORS.delivered, values: delivered }, { label: 'Read', color: COLORS.read, values: read }] })
  const counts = new Map(delivery.results.map((r) => [r.dimensions[0], r.metrics[0] ?? 0]))
  // Shares as the query API's rates define them: delivered and failed of sent, read of delivered.
  const stats = [
    ['Sent', 'whatsapp.message_sent', null, null],
    ['Delivered', 'whatsapp.message_delivered', 'delivered', 'whatsapp.message_sent'],
    ['Read', 'whatsapp.message_read', 'read', 'whatsapp.message_delivered'],
    ['Failed', 'whatsapp.message_failed', 'failed', 'whatsapp.message_sent'],
  ]
  $('#delivery-stats').replaceChildren(...stats.map(([name, event, tone, of]) => {
    const wrap = document.createElement('div')
    wrap.className = 'stat'
    if (tone) wrap.dataset.tone = tone
    const dt = document.createElement('dt')
    dt.textContent = name
    const dd = document.createElement('dd')
    const n = counts.get(event) ?? 0
    dd.dataset.event = event
    dd.dataset.value = String(n)
    dd.textContent = formatInteger(n)
    const base = of ? counts.get(of) ?? 0 : 0
    if (of && base > 0) {
      const share = document.createElement('small')
      share.textContent = ` ${formatPercent(n / base)}`
      share.title = `of ${of === 'whatsapp.message_sent' ? 'sent' : 'delivered'}`
      dd.append(share)
    }
    wrap.append(dt, dd)
    return wrap
  }))
}

/**
 * Where people came from: visitors by their page views' source (or channel), and new leads by their lead.created
 * event's (a lead's later events, a bot's reply say, carry no visit, so counting leads over all events would file
 * most of them under "none"). The top sources by visitors, each with its leads.
 */
const ACQUISITION_LIMIT = 8
async function acquisition(dimension, q) {
  const [visitors, leads] = await Promise.all([
    q({ metrics: ['visitors'], dimensions: [dimension], filters: [['is', 'event:name', ['pageview']]], orderBy: [['visitors', 'desc']], limit: ACQUISITION_LIMIT }),
    q({ metrics: ['events'], dimensions: [dimension], filters: [['is', 'event:name', ['lead.created']]] }),
  ])
  const leadsBy = new Map(leads.results.map((r) => [r.dimensions[0] ?? '', r.metrics[0] ?? 0]))
  return visitors.results.map((r) => ({ key: r.dimensions[0] ?? '', values: [r.metrics[0] ?? 0, leadsBy.get(r.dimensions[0] ?? '') ?? 0] }))
}

/** How the bot's conversations ended: how many started, and the shares completed and handed over to a person. */
function renderBot(events, rates) {
  const started = events.results.find((r) => r.dimensions[0] === 'bot.conversation_started')?.metrics[0] ?? 0
  const [completed, handedOver] = rates.results[0]?.metrics ?? []
  const items = [
    ['Started', 'bot.conversation_started', started, formatInteger],
    ['Completed', 'bot_completion_rate', completed, formatPercent],
    ['Handed over', 'bot_handover_rate', handedOver, formatPercent],
  ]
  $('#bot-stats').replaceChildren(...items.map(([name, metric, value, format]) => {
    const wrap = document.createElement('div')
    wrap.className = 'stat'
    const dt = document.createElement('dt')
    dt.textContent = name
    const dd = document.createElement('dd')
    dd.dataset.metric = metric
    dd.dataset.value = value == null ? '' : String(value)
    dd.textContent = format(value)
    wrap.append(dt, dd)
    return wrap
  }))
}

function renderForms(events, rates) {
  const rows = new Map()
  for (const r of events.results) {
    const id = r.dimensions[0]
    if (!id) continue
    const row = rows.get(id) ?? { views: 0, submissions: 0, rate: null }
    if (r.dimensions[1] === 'form.viewed') row.views += r.metrics[0] ?? 0
    if (r.dimensions[1] === 'form.submitted') row.submissions += r.metrics[0] ?? 0
    rows.set(id, row)
  }
  for (const r of rates.results) if (rows.has(r.dimensions[0])) rows.get(r.dimensions[0]).rate = r.metrics[0]
  const body = $('#forms tbody')
  const sorted = [...rows].sort((a, b) => b[1].views - a[1].views)
  body.replaceChildren(...sorted.map(([id, row]) => {
    const tr = document.createElement('tr')
    tr.dataset.form = id
    const name = document.createElement('td')
    name.textContent = state.forms.get(id) ?? `Form ${id.slice(0, 8)}`
    const cells = [['views', row.views, formatInteger], ['submissions', row.submissions, formatInteger], ['form_conversion_rate', row.rate, formatPercent]]
    tr.append(name, ...cells.map(([metric, value, format]) => {
      const td = document.createElement('td')
      td.className = 'num'
      td.dataset.metric = metric
      td.dataset.value = value == null ? '' : String(value)
      td.textContent = format(value)
      return td
    }))
    return tr
  }))
  if (sorted.length === 0) {
    const tr = document.createElement('tr')
    const td = document.createElement('td')
    td.colSpan = 4
    td.className = 'muted empty'
    td.textContent = 'No form views in this period'
    tr.append(td)
    body.append(tr)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The live feed.

function startLive() {
  state.live?.abort()
  const controller = new AbortController()
  state.live = controller
  const status = $('#live-status')
  const dot = $('#live-dot')
  api.streamLive({
    signal: controller.signal,
    onStatus: (s) => {
      status.textContent = s === 'open' ? 'connected' : s === 'unauthorized' ? 'not allowed for this key' : 'reconnecting…'
      dot.dataset.status = s
      document.body.dataset.live = s
    },
    onEvent: addLiveEvent,
    onReset: () => refresh({ quiet: true }),
  })
}

// A resumed stream may send an event again (at least once): the feed shows each id once.
const shown = new Set()

function addLiveEvent(event) {
  const id = String(event.id)
  if (shown.has(id)) return
  shown.add(id)
  if (shown.size > 1000) shown.delete(shown.values().next().value)
  const list = $('#live')
  $('#live-empty').hidden = true
  const li = document.createElement('li')
  li.className = 'live-item fresh'
  li.dataset.name = event.name
  li.dataset.id = String(event.id)
  const tone = document.createElement('span')
  tone.className = 'live-tone'
  tone.dataset.tone = eventTone(event.name)
  const what = document.createElement('span')
  what.className = 'live-what'
  what.textContent = eventLabel(event.name)
  const where = document.createElement('span')
  where.className = 'live-where muted'
  where.textContent = [event.source, event.channel && label(event.channel), event.country, event.device].filter(Boolean).join(' · ')
  const when = document.createElement('time')
  when.className = 'live-when muted'
  when.dateTime = event.occurredAt
  when.textContent = formatTime(event.occurredAt, state.tenant?.timezone)
  li.append(tone, what, where, when)
  list.prepend(li)
  setTimeout(() => li.classList.remove('fresh'), 2500)
  while (list.children.length > LIVE_MAX) list.lastElementChild.remove()
}

start()
