// One question of the public state (PublicQuestion in domains/assessments/schemas.ts) as form controls, and the
// value to send for what the person entered. The API is the judge of an answer: the page sends what was entered
// (a number it could not read is sent as typed) and shows the API's message beside the question.
//
// Everything is built with createElement and textContent: a question's text is the tenant's, never markup.

const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'dataset') Object.assign(node.dataset, v)
    else if (k in node && typeof v !== 'string') node[k] = v
    else node.setAttribute(k, v === true ? '' : String(v))
  }
  node.append(...children.filter((c) => c !== null && c !== undefined))
  return node
}
export { el }

const TITLE_ID = 'question-title'
const HELP_ID = 'question-help'
const ERROR_ID = 'question-error'

function scaleSteps(q) {
  const min = q.min ?? 1
  const max = q.max ?? 5
  const step = q.step ?? 1
  const out = []
  for (let i = 0; min + i * step <= max + 1e-9 && out.length <= 100; i++) out.push(Number((min + i * step).toFixed(6)))
  return out
}

function hintOf(q) {
  if (q.type === 'multiple_choice') {
    const min = q.minSelections ?? (q.required ? 1 : 0)
    const max = q.maxSelections
    if (max !== undefined && min > 0) return `Choose ${min === max ? max : `${min} to ${max}`}.`
    if (max !== undefined) return `Choose up to ${max}, or none.`
    return min > 0 ? `Choose at least ${min}.` : 'Choose all that apply, or none.'
  }
  if (q.type === 'number') {
    const range = q.min !== undefined && q.max !== undefined ? `From ${q.min} to ${q.max}` : q.min !== undefined ? `At least ${q.min}` : q.max !== undefined ? `At most ${q.max}` : ''
    return range ? `${range}${q.unit ? ` ${q.unit}` : ''}.` : ''
  }
  if (q.type === 'text') return `Up to ${q.maxLength ?? 1000} characters.`
  return ''
}

/** The heading every question starts with: focused when the question appears, so screen readers read it first. */
function title(q) {
  return el('h2', { id: TITLE_ID, tabindex: '-1', class: 'question-title' },
    q.text, q.required ? null : el('span', { class: 'optional' }, ' (optional)'))
}

function helpOf(q) {
  const hint = hintOf(q)
  const text = [q.help, hint].filter(Boolean).join(' ')
  return text ? el('p', { id: HELP_ID, class: 'help' }, text) : null
}

const describedBy = (q) => [q.help || hintOf(q) ? HELP_ID : null, ERROR_ID].filter(Boolean).join(' ')

/** Radios or checkboxes in a fieldset whose legend is the question. */
function choices(q, options, kind, isChecked) {
  const name = `answer-${q.id}`
  const list = el('div', { class: `choices ${kind === 'radio' ? 'single' : 'multi'}${q.type === 'scale' ? ' scale' : ''}` })
  options.forEach((o, i) => {
    const id = `${name}-${i}`
    const input = el('input', { type: kind, id, name, value: String(o.id), checked: isChecked(o.id) })
    list.append(el('label', { for: id, class: 'choice' }, input, el('span', {}, o.label)))
  })
  const fieldset = el('fieldset', { 'aria-describedby': describedBy(q) },
    el('legend', {}, title(q)), helpOf(q), list)
  return fieldset
}

/**
 * Renders `q` with `current` (the kept answer when going back) filled in. Answers `{ element, read, focusField }`:
 * `read()` is the value to send, `focusField()` focuses the first control (after an error).
 */
export function renderQuestion(q, current) {
  let element
  let read
  switch (q.type) {
    case 'single_choice': {
      element = choices(q, q.options ?? [], 'radio', (id) => current === id)
      read = () => element.querySelector('input:checked')?.value ?? null
      break
    }
    case 'yes_no': {
      const options = q.options ?? [{ id: 'yes', label: 'Yes' }, { id: 'no', label: 'No' }]
      element = choices(q, options, 'radio', (id) => (current === true && id === 'yes') || (current === false && id === 'no'))
      read = () => {
        const v = element.querySelector('input:checked')?.value
        return v === undefined ? null : v === 'yes'
      }
      break
    }
    case 'scale': {
      const steps = scaleSteps(q)
      element = choices(q, steps.map((n) => ({ id: n, label: String(n) })), 'radio', (id) => current === id)
      read = () => {
        const v = element.querySelector('input:checked')?.value
        return v === undefined ? null : Number(v)
      }
      break
    }
    case 'multiple_choice': {
      const chosen = new Set(Array.isArray(current) ? current : [])
      element = choices(q, q.options ?? [], 'checkbox', (id) => chosen.has(id))
      read = () => [...element.querySelectorAll('input:checked')].map((i) => i.value)
      break
    }
    case 'number': {
      // Text with a decimal keyboard, not type=number: a decimal comma (72,5) is read as the bot reads it, and
      // what the browser cannot parse still reaches the API, whose message then explains it.
      const input = el('input', {
        id: 'answer', name: 'answer', type: 'text', inputmode: q.integer ? 'numeric' : 'decimal', autocomplete: 'off',
        'aria-labelledby': TITLE_ID, 'aria-describedby': describedBy(q), value: typeof current === 'number' ? String(current) : '',
      })
      const row = el('div', { class: 'number-row' }, input, q.unit ? el('span', { class: 'unit', 'aria-hidden': 'true' }, q.unit) : null)
      element = el('div', { class: 'field' }, title(q), helpOf(q), row)
      read = () => {
        const raw = input.value.trim()
        if (raw === '') return null
        const n = Number(raw.replace(/\s/g, '').replace(',', '.'))
        return Number.isFinite(n) ? n : raw
      }
      break
    }
    case 'text': {
      const area = el('textarea', {
        id: 'answer', name: 'answer', rows: '4', maxlength: String(q.maxLength ?? 1000),
        'aria-labelledby': TITLE_ID, 'aria-describedby': describedBy(q),
      })
      area.value = typeof current === 'string' ? current : ''
      element = el('div', { class: 'field' }, title(q), helpOf(q), area)
      read = () => area.value
      break
    }
    default: {
      // A type this page does not know (a newer engine): say so rather than guess an answer.
      element = el('div', { class: 'field' }, title(q), el('p', { class: 'error' }, 'This question cannot be answered on this page yet.'))
      read = () => undefined
    }
  }
  const focusField = () => (element.querySelector('input:checked') ?? element.querySelector('input, textarea'))?.focus()
  const markInvalid = (invalid) => {
    for (const c of element.querySelectorAll('input, textarea')) {
      if (invalid) c.setAttribute('aria-invalid', 'true')
      else c.removeAttribute('aria-invalid')
    }
  }
  return { element, read, focusField, markInvalid }
}

/** A profile field still missing (SessionStateView.missingProfile): a labelled control with its own error slot. */
export function renderProfileField(f, value) {
  const id = `profile-${f.key}`
  const errorId = `${id}-error`
  let control
  if (f.type === 'choice') {
    control = el('select', { id, name: f.key, 'aria-describedby': errorId })
    control.append(new Option('Choose…', ''), ...(f.options ?? []).map((o) => new Option(o.label, o.id, false, value === o.id)))
  } else {
    control = el('input', {
      id, name: f.key, type: 'text', 'aria-describedby': errorId,
      inputmode: f.type === 'number' ? 'decimal' : undefined, autocomplete: f.key === 'age' ? 'off' : undefined,
      value: value === undefined ? '' : String(value),
    })
  }
  const error = el('span', { id: errorId, class: 'field-error', dataset: { error: f.key } })
  return el('div', { class: 'field' }, el('label', { for: id }, f.label), control, error)
}
