// Charts: uPlot (served from node_modules by the API) for series, plain DOM for bar lists and the funnel.
import uPlot from '/dashboard/vendor/uplot.esm.js'
import { formatInteger, formatPercent } from './format.js'

export const COLORS = {
  leads: '#4f46e5',
  received: '#10b981',
  sent: '#0ea5e9',
  delivered: '#0ea5e9',
  read: '#10b981',
}

const charts = new Map()

const axis = (labels) => ({
  stroke: '#6b7280',
  grid: { stroke: '#eef0f3', width: 1 },
  ticks: { show: false },
  font: '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
  ...(labels ? { values: (_u, splits) => splits.map((i) => labels[Math.round(i)] ?? '') } : {}),
})

function draw(container, opts, data) {
  charts.get(container)?.destroy()
  container.replaceChildren()
  const width = Math.max(240, container.clientWidth)
  const chart = new uPlot({ width, height: container.clientHeight || 260, ...opts }, data, container)
  charts.set(container, chart)
  return chart
}

window.addEventListener('resize', () => {
  for (const [container, chart] of charts) chart.setSize({ width: Math.max(240, container.clientWidth), height: chart.height })
})

/** Several counts over the same buckets (x = bucket index, labelled with the bucket's name). */
export function drawSeries(container, { labels, series }) {
  const x = labels.map((_, i) => i)
  const opts = {
    legend: { show: false },
    cursor: { points: { size: 7 }, drag: { x: false, y: false } },
    scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(4, Math.ceil(max * 1.15))] } },
    axes: [
      { ...axis(labels), space: 60, incrs: [1, 2, 3, 4, 6, 7, 12, 24, 48] },
      { ...axis(null), size: 48, values: (_u, splits) => splits.map((v) => formatInteger(v)) },
    ],
    series: [
      { label: 'bucket', value: (_u, i) => labels[i] ?? '' },
      ...series.map((s) => ({
        label: s.label, stroke: s.color, width: 2, fill: `${s.color}14`,
        points: { show: labels.length <= 31, size: 4, fill: '#fff' },
        value: (_u, v) => formatInteger(v),
      })),
    ],
  }
  return draw(container, opts, [x, ...series.map((s) => s.values)])
}

/** Rates (0..1) over the same buckets. */
export function drawRates(container, { labels, series }) {
  const x = labels.map((_, i) => i)
  const opts = {
    legend: { show: false },
    cursor: { points: { size: 6 }, drag: { x: false, y: false } },
    scales: { x: { time: false }, y: { range: [0, 1] } },
    axes: [
      { ...axis(labels), space: 70, incrs: [1, 2, 3, 4, 6, 7, 12, 24, 48] },
      { ...axis(null), size: 44, splits: () => [0, 0.25, 0.5, 0.75, 1], values: (_u, splits) => splits.map((v) => formatPercent(v)) },
    ],
    series: [
      { label: 'bucket' },
      ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: false }, spanGaps: true })),
    ],
  }
  return draw(container, opts, [x, ...series.map((s) => s.values)])
}

export function legend(container, items) {
  container.replaceChildren(...items.map(({ label, color, total }) => {
    const item = document.createElement('span')
    item.className = 'legend-item'
    const swatch = document.createElement('i')
    swatch.style.background = color
    const text = document.createElement('span')
    text.textContent = label
    const value = document.createElement('b')
    value.textContent = formatInteger(total)
    item.append(swatch, text, value)
    return item
  }))
}

/**
 * A ranked list with proportional bars (the first value decides the bar), e.g. sources by visitors with their
 * leads beside. Each row carries its raw values in data attributes.
 */
export function drawBars(list, rows, { name, columns }) {
  const max = Math.max(1, ...rows.map((r) => r.values[0] ?? 0))
  list.replaceChildren(...rows.map((r) => {
    const li = document.createElement('li')
    li.dataset.key = r.key
    const bar = document.createElement('div')
    bar.className = 'bar'
    bar.style.width = `${((r.values[0] ?? 0) / max) * 100}%`
    const label = document.createElement('span')
    label.className = 'bar-label'
    label.textContent = name(r.key)
    li.append(bar, label)
    r.values.forEach((v, i) => {
      const cell = document.createElement('span')
      cell.className = `bar-value${i === 0 ? '' : ' bar-value-secondary'}`
      cell.dataset.metric = columns[i]
      cell.dataset.value = String(v ?? '')
      cell.textContent = formatInteger(v)
      li.append(cell)
    })
    return li
  }))
  if (rows.length === 0) list.replaceChildren(emptyRow())
}

/** Funnel steps as narrowing bars, each with its share of the first step and of the one before. */
export function drawFunnel(list, steps, name) {
  const first = Math.max(1, steps[0]?.subjects ?? 0)
  list.replaceChildren(...steps.map((s, i) => {
    const li = document.createElement('li')
    li.dataset.step = s.name
    const head = document.createElement('div')
    head.className = 'funnel-head'
    const label = document.createElement('span')
    label.textContent = name(s.name)
    const value = document.createElement('b')
    value.dataset.value = String(s.subjects)
    value.textContent = formatInteger(s.subjects)
    head.append(label, value)
    const track = document.createElement('div')
    track.className = 'funnel-track'
    const bar = document.createElement('div')
    bar.className = 'funnel-bar'
    bar.style.width = `${Math.max(1.5, (s.subjects / first) * 100)}%`
    track.append(bar)
    const note = document.createElement('p')
    note.className = 'funnel-note muted small'
    note.textContent = i === 0 ? '100% of the first step' : `${formatPercent(s.conversionFromPrevious)} of the step before · ${formatPercent(s.conversionFromFirst)} overall`
    li.append(head, track, note)
    return li
  }))
}

function emptyRow() {
  const li = document.createElement('li')
  li.className = 'muted empty'
  li.textContent = 'No data in this period'
  return li
}
