// The onboarding page. Talks only to the public onboarding routes. The session token arrives in the link's
// fragment (#token=…, which browsers never send to a server), moves to session storage, and leaves the address bar.
const STORAGE = 'onboarding.token'
const $ = (sel) => document.querySelector(sel)

const FIELDS = {
  business_info: [
    { name: 'businessName', label: 'Business name' },
    { name: 'country', label: 'Country (ISO code, e.g. PT)', placeholder: 'PT' },
    { name: 'timezone', label: 'Time zone', placeholder: 'Europe/Lisbon' },
    { name: 'industry', label: 'Industry', options: ['dental', 'health', 'beauty', 'education', 'real_estate', 'automotive', 'retail', 'services', 'other'] },
    { name: 'contactEmail', label: 'Contact email', type: 'email' },
    { name: 'contactPhone', label: 'Contact phone (international format)', placeholder: '+351912345678', type: 'tel' },
  ],
  whatsapp_connect: [
    { name: 'phoneNumberId', label: 'Phone number ID' },
    { name: 'wabaId', label: 'WhatsApp Business Account ID' },
    { name: 'accessToken', label: 'Access token (system user)', type: 'password' },
    { name: 'appMode', label: 'Meta app', options: ['platform', 'own'] },
  ],
  bot_setup: [
    { name: 'starterFlow', label: 'Starter flow', options: ['qualification'] },
    { name: 'services', label: 'What you offer (one per line, up to 9)', multiline: true },
  ],
  test_message: [],
  go_live: [{ name: 'confirm', label: 'Activate my workspace now', type: 'checkbox' }],
}

function takeTokenFromLink() {
  const params = new URLSearchParams(location.hash.slice(1))
  const token = params.get('token')
  if (token) {
    sessionStorage.setItem(STORAGE, token)
    history.replaceState(null, '', location.pathname)
  }
  return sessionStorage.getItem(STORAGE)
}

async function call(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    referrerPolicy: 'no-referrer',
  })
  const json = await res.json().catch(() => ({}))
  return { status: res.status, json }
}

let token = null
let poll = null

function show(id) {
  for (const s of ['start', 'session', 'done', 'gone']) $(`#${s}`).hidden = s !== id
}

function renderSession(view) {
  show('session')
  $('#progress-bar').style.width = `${view.progress}%`
  $('#progress-text').textContent = `${Math.round(view.progress)}% complete`
  $('#progress-text').dataset.value = String(view.progress)
  $('.progress').setAttribute('aria-valuenow', String(Math.round(view.progress)))
  $('#expires').textContent = new Date(view.expiresAt).toLocaleDateString()
  $('#resume-link').value = `${location.origin}/onboarding#token=${token}`
  const list = $('#steps')
  list.replaceChildren(...view.steps.map((s) => {
    const li = document.createElement('li')
    li.className = s.status
    li.dataset.step = s.name
    li.textContent = s.title
    return li
  }))
  const step = view.steps.find((s) => s.name === view.currentStep)
  renderStep(view, step)
}

function fieldInput(def, saved) {
  const wrap = document.createElement('label')
  wrap.textContent = def.label
  let input
  if (def.options) {
    input = document.createElement('select')
    for (const o of def.options) input.append(new Option(o, o, false, saved === o))
  } else if (def.multiline) {
    input = document.createElement('textarea')
    input.rows = 3
    if (Array.isArray(saved)) input.value = saved.join('\n')
  } else {
    input = document.createElement('input')
    input.type = def.type ?? 'text'
    if (def.type === 'checkbox') input.checked = saved === true
    else if (saved !== undefined && saved !== '(saved)') input.value = String(saved)
    if (saved === '(saved)') input.placeholder = 'saved (enter again to change)'
    else if (def.placeholder) input.placeholder = def.placeholder
  }
  input.name = def.name
  const error = document.createElement('span')
  error.className = 'field-error'
  error.dataset.error = def.name
  wrap.append(input, error)
  return wrap
}

function valuesOf(form, defs) {
  const out = {}
  for (const def of defs) {
    const el = form.elements.namedItem(def.name)
    if (def.type === 'checkbox') { if (el.checked) out[def.name] = true; continue }
    const v = el.value.trim()
    if (v === '') continue
    out[def.name] = def.multiline ? v.split('\n').map((s) => s.trim()).filter(Boolean) : v
  }
  return out
}

function renderStep(view, step) {
  const panel = $('#step-panel')
  clearInterval(poll)
  if (!step) { panel.replaceChildren(); return }
  const h = document.createElement('h2')
  h.textContent = step.title
  const next = document.createElement('p')
  next.className = 'next'
  next.textContent = view.next
  const defs = FIELDS[step.name]
  if (defs.length === 0) {
    const waiting = document.createElement('p')
    waiting.className = 'waiting'
    waiting.textContent = 'Waiting for your message…'
    panel.replaceChildren(h, next, waiting)
    // The server advances the step the moment the message is processed; the page just looks again.
    poll = setInterval(refresh, 1500)
    return
  }
  const form = document.createElement('form')
  form.noValidate = true
  form.id = `form-${step.name}`
  for (const def of defs) form.append(fieldInput(def, step.fields[def.name]))
  const button = document.createElement('button')
  button.type = 'submit'
  button.textContent = step.name === 'go_live' ? 'Go live' : 'Save and continue'
  const formError = document.createElement('p')
  formError.className = 'error'
  formError.dataset.error = 'form'
  form.append(button, formError)
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    button.disabled = true
    for (const el of form.querySelectorAll('[data-error]')) el.textContent = ''
    const res = await call('PATCH', `/onboarding/sessions/${token}/steps/${step.name}`, { fields: valuesOf(form, defs) })
    button.disabled = false
    if (res.status === 200) {
      if (res.json.apiKey) return renderDone(res.json.apiKey.key)
      return renderSession(res.json.session)
    }
    if (res.status === 404) return show('gone')
    const details = res.json.error?.details ?? []
    let placed = false
    for (const d of details) {
      const name = String(d.path ?? '').replace(/^fields\./, '')
      const slot = form.querySelector(`[data-error="${CSS.escape(name)}"]`)
      if (slot) { slot.textContent = d.message; placed = true }
    }
    if (!placed) formError.textContent = res.json.error?.message ?? `Something went wrong (${res.status})`
  })
  panel.replaceChildren(h, next, form)
}

function renderDone(key) {
  clearInterval(poll)
  show('done')
  $('#api-key').value = key
  // The session is complete: the link is of no more use on this device.
  sessionStorage.removeItem(STORAGE)
}

async function refresh() {
  const res = await call('GET', `/onboarding/sessions/${token}`)
  if (res.status === 404) { clearInterval(poll); return show('gone') }
  if (res.json.status === 'completed') { clearInterval(poll); show('done'); $('#api-key').value = '(shown once when you went live)'; return }
  renderSession(res.json)
}

async function start(e) {
  e.preventDefault()
  const form = e.target
  const body = {}
  for (const name of ['businessName', 'contactEmail', 'website']) {
    const v = form.elements.namedItem(name).value.trim()
    if (v) body[name] = v
  }
  const res = await call('POST', '/onboarding/sessions', body)
  if (res.status !== 201) {
    form.querySelector('[data-error="form"]').textContent = res.json.error?.message ?? 'Could not start'
    return
  }
  token = res.json.link.token
  sessionStorage.setItem(STORAGE, token)
  renderSession(res.json.session)
}

function copy(selector) {
  const input = $(selector)
  input.select()
  navigator.clipboard?.writeText(input.value).catch(() => {})
}

$('#start-form').addEventListener('submit', start)
$('#copy-link').addEventListener('click', () => copy('#resume-link'))
$('#copy-key').addEventListener('click', () => copy('#api-key'))
$('#restart').addEventListener('click', () => { sessionStorage.removeItem(STORAGE); token = null; show('start') })
$('#new-link').addEventListener('click', async () => {
  const res = await call('POST', `/onboarding/sessions/${token}/link`)
  if (res.status === 201) {
    token = res.json.token
    sessionStorage.setItem(STORAGE, token)
    $('#resume-link').value = `${location.origin}/onboarding#token=${token}`
  }
})

token = takeTokenFromLink()
if (token) refresh()
else show('start')
