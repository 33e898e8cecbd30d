// The web questionnaire. It reads only the public assessment routes (api.js): start (through the partner link named
// by ?link=, so the session is attributed to it), the current question, answer, back, profile, complete, and the
// result's analysis, polled until it is ready. Every answer of the API is the whole session state; the page draws it.
import * as api from './api.js'
import { el, renderProfileField, renderQuestion } from './questions.js'

const $ = (sel) => document.querySelector(sel)
const VIEWS = ['loading', 'intro', 'question-view', 'profile-view', 'result-view', 'gone']
const LINK_CODE = /^[A-Za-z0-9_-]{4,64}$/
const ANALYSIS_POLL_MS = [1000, 2000, 3000, 5000]
const ANALYSIS_GIVE_UP_MS = 5 * 60_000

// The page's address: /assessments/<publicKey>/start?link=<code>.
const publicKey = decodeURIComponent(location.pathname.split('/').filter(Boolean).at(-2) ?? '')
const givenLink = new URLSearchParams(location.search).get('link')
const linkCode = givenLink && LINK_CODE.test(givenLink) ? givenLink : null

let token = api.savedToken(publicKey)
let current = null // { question, view } of the question on screen
let shownAt = 0
let busy = false
let analysisTimer = null

function show(id) {
  for (const v of VIEWS) $(`#${v}`).hidden = v !== id
  if (id !== 'result-view') stopAnalysis()
}

/** Moves focus to a view's heading (tabindex=-1), so keyboard and screen-reader users start at the new content. */
const focusHeading = (selector) => $(selector)?.focus({ preventScroll: false })
const announce = (text) => { $('#announce').textContent = text }

function setBusy(on, ...buttons) {
  busy = on
  for (const b of buttons) b.disabled = on
}

function renderHeader(state) {
  $('#assessment-name').textContent = state.assessment.name
  const kind = { health: 'Health check', wealth: 'Financial check', hybrid: 'Health and wealth check' }[state.assessment.type] ?? ''
  // The kind above the name, unless the name already says it.
  $('#assessment-type').textContent = kind.toLowerCase() === state.assessment.name.trim().toLowerCase() ? '' : kind
  document.title = state.assessment.name
}

/** Draws the session state the API answered: a question, the missing profile, or the result. */
async function render(state, { focus = true } = {}) {
  renderHeader(state)
  if (state.status === 'completed') return renderResult(state, focus)
  // An abandoned session (idle too long) is shown as it stood: the next answer reopens it where the engine allows
  // that, and a 409 otherwise (handleRefusal).
  if (state.status !== 'in_progress' && state.status !== 'abandoned') return renderGone('This assessment was closed', 'You can start again.', true)
  if (state.question) return renderQuestionView(state, focus)
  if (state.missingProfile.length > 0) return renderProfile(state, focus)
  // Every question answered and nothing missing, yet not completed (a completion interrupted): complete it.
  const res = await api.complete(token)
  if (res.status === 200) return render(res.json, { focus })
  return renderGone('Something went wrong', api.messageOf(res), true)
}

/**
 * The bar is the API's progress. The words: a question not answered yet is number answered + 1; one answered before
 * (back) cannot be numbered from the state (later answers are kept and counted), so it says what is happening.
 */
function renderProgress(state) {
  const revisiting = state.currentAnswer !== undefined
  const position = Math.min(state.answered + 1, state.total)
  $('#progress').value = state.progress
  $('#progress-text').textContent = revisiting ? `Changing an answer · ${state.answered} of ${state.total} done` : `Question ${position} of ${state.total}`
  $('#progress-text').dataset.value = String(state.progress)
  return revisiting ? null : position
}

function renderQuestionView(state, focus) {
  show('question-view')
  const position = renderProgress(state)
  const q = state.question
  const view = renderQuestion(q, state.currentAnswer)
  current = { question: q, view }
  $('#question-body').replaceChildren(view.element)
  $('#question-body').dataset.question = q.id
  $('#question-body').dataset.type = q.type
  clearQuestionError()
  $('#back').hidden = !state.canGoBack
  $('#next').textContent = position === state.total && state.missingProfile.length === 0 ? 'Finish' : 'Next'
  shownAt = performance.now()
  announce($('#progress-text').textContent)
  if (focus) focusHeading('#question-title')
}

function clearQuestionError() {
  $('#question-error').textContent = ''
  current?.view.markInvalid(false)
}

function showQuestionError(message) {
  $('#question-error').textContent = message
  current?.view.markInvalid(true)
  current?.view.focusField()
}

/** An answer the API refused: 400 (the answer) beside the question; 409 (the session moved on elsewhere): redraw. */
async function handleRefusal(res) {
  if (res.status === 404) return sessionLost()
  if (res.status === 409) {
    const now = await api.viewSession(token)
    if (now.status === 200 && now.json.status === 'abandoned' && now.json.question?.id === current?.question.id) {
      return renderGone('This assessment was closed', 'It was left unanswered for too long. You can start again.', true)
    }
    if (now.status === 200) {
      await render(now.json)
      announce('This assessment moved on in another window; here is where it is now.')
      return
    }
    if (now.status === 404) return sessionLost()
  }
  const details = res.json?.error?.details
  const detail = Array.isArray(details) ? details.find((d) => d.path === 'value' || d.path === 'questionId') : null
  showQuestionError(detail?.message ? api.capitalize(detail.message) : api.messageOf(res))
}

async function submitAnswer(e) {
  e.preventDefault()
  if (busy || !current) return
  const value = current.view.read()
  if (value === undefined) return
  clearQuestionError()
  setBusy(true, $('#next'), $('#back'))
  const responseMs = Math.max(0, Math.min(Math.round(performance.now() - shownAt), 24 * 3600 * 1000))
  const res = await api.answer(token, { questionId: current.question.id, value, responseMs })
  setBusy(false, $('#next'), $('#back'))
  if (res.status === 200) return render(res.json)
  return handleRefusal(res)
}

async function goBack() {
  if (busy) return
  setBusy(true, $('#next'), $('#back'), $('#profile-back'), $('#profile-save'))
  const res = await api.back(token)
  setBusy(false, $('#next'), $('#back'), $('#profile-back'), $('#profile-save'))
  if (res.status === 200) return render(res.json)
  if (res.status === 404) return sessionLost()
  const slot = $('#question-view').hidden ? $('#profile-error') : $('#question-error')
  slot.textContent = api.messageOf(res)
}

// ---------------------------------------------------------------------------------------------------------------
// Profile fields the result still waits for.

let profileFields = []

function renderProfile(state, focus) {
  show('profile-view')
  profileFields = state.missingProfile
  $('#profile-fields').replaceChildren(...profileFields.map((f) => renderProfileField(f, state.demographics?.[f.key])))
  $('#profile-error').textContent = ''
  $('#profile-back').hidden = !state.canGoBack
  announce('All questions answered. A few details about you are still needed.')
  if (focus) focusHeading('#profile-title')
}

async function submitProfile(e) {
  e.preventDefault()
  if (busy) return
  const form = $('#profile-form')
  for (const slot of form.querySelectorAll('[data-error]')) slot.textContent = ''
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid')
  $('#profile-error').textContent = ''
  const demographics = {}
  const empty = []
  for (const f of profileFields) {
    const control = form.elements.namedItem(f.key)
    const raw = control.value.trim()
    if (raw === '') { empty.push(f); continue }
    const n = Number(raw.replace(',', '.'))
    demographics[f.key] = f.type === 'number' && Number.isFinite(n) ? n : raw
  }
  const fieldError = (key, message) => {
    const slot = form.querySelector(`[data-error="${CSS.escape(key)}"]`)
    if (!slot) return false
    slot.textContent = message
    form.elements.namedItem(key)?.setAttribute('aria-invalid', 'true')
    return true
  }
  // Only required fields are listed (the API names no optional ones): an empty one would leave the result waiting.
  if (empty.length > 0) {
    for (const f of empty) fieldError(f.key, `${f.label} is needed for your result.`)
    form.elements.namedItem(empty[0].key)?.focus()
    return
  }
  setBusy(true, $('#profile-save'), $('#profile-back'))
  const res = await api.saveProfile(token, demographics)
  setBusy(false, $('#profile-save'), $('#profile-back'))
  if (res.status === 200) return render(res.json)
  if (res.status === 404) return sessionLost()
  let placed = false
  for (const d of res.json?.error?.details ?? []) {
    const key = String(d.path ?? '').replace(/^demographics\./, '')
    if (fieldError(key, api.capitalize(d.message))) placed = true
  }
  if (!placed) $('#profile-error').textContent = api.messageOf(res)
  form.querySelector('[aria-invalid=true]')?.focus()
}

// ---------------------------------------------------------------------------------------------------------------
// The result and its analysis.

const humanize = (key) => api.capitalize(key.replace(/_/g, ' '))
const formatNumber = (n) => (Number.isInteger(n) ? String(n) : n.toLocaleString('en', { maximumFractionDigits: 2 }))

function renderResult(state, focus) {
  show('result-view')
  const r = state.result
  $('#total-score').textContent = formatNumber(r.totalScore)
  $('#total-score').dataset.value = String(r.totalScore)
  $('#band').textContent = r.bandLabel ?? ''
  $('#band').dataset.value = r.band ?? ''
  $('#categories').replaceChildren(...Object.entries(r.categoryScores).map(([key, value]) => {
    const name = el('span', { class: 'category-name', id: `category-${key}` }, humanize(key))
    // A meter for scores that are percentages (the usual categoryScoring); a sum is shown as its number only.
    const meter = value >= 0 && value <= 100 ? el('meter', { min: '0', max: '100', value: String(value), 'aria-labelledby': `category-${key}` }) : null
    return el('li', { dataset: { category: key, value: String(value) } }, name, meter, el('span', { class: 'category-value' }, formatNumber(value)))
  }))
  $('#categories-title').hidden = Object.keys(r.categoryScores).length === 0
  $('#recommendations').replaceChildren(...r.recommendations.map((t) => el('li', {}, t)))
  $('#recommendations-title').hidden = r.recommendations.length === 0
  const formulas = Object.entries(r.formulaValues)
  $('#formulas-box').hidden = formulas.length === 0
  $('#formulas').replaceChildren(...formulas.flatMap(([key, value]) => [el('dt', {}, humanize(key)), el('dd', { dataset: { formula: key, value: String(value) } }, formatNumber(value))]))
  announce(`Your result: ${formatNumber(r.totalScore)}${r.bandLabel ? `, ${r.bandLabel}` : ''}`)
  if (focus) focusHeading('#result-title')
  startAnalysis(r.id)
}

function stopAnalysis() {
  clearTimeout(analysisTimer)
  analysisTimer = null
}

function startAnalysis(resultId) {
  stopAnalysis()
  const box = $('#analysis')
  if (box.dataset.resultId === resultId && box.dataset.status === 'ready') return
  box.dataset.resultId = resultId
  box.dataset.status = 'pending'
  box.setAttribute('aria-busy', 'true')
  $('#analysis-status').textContent = 'Preparing your analysis…'
  $('#analysis-text').replaceChildren()
  $('#analysis-recommendations').replaceChildren()
  const began = Date.now()
  let attempt = 0
  const poll = async () => {
    const res = await api.analysis(token)
    if (box.dataset.resultId !== resultId) return
    if (res.status === 200 && res.json.status === 'ready' && res.json.analysis) return showAnalysis(res.json.analysis)
    if (res.status === 404) return sessionLost()
    if (Date.now() - began > ANALYSIS_GIVE_UP_MS) {
      $('#analysis-status').textContent = 'Your analysis is taking longer than usual. Reload this page later to see it.'
      box.setAttribute('aria-busy', 'false')
      return
    }
    analysisTimer = setTimeout(poll, ANALYSIS_POLL_MS[Math.min(attempt++, ANALYSIS_POLL_MS.length - 1)])
  }
  void poll()
}

function showAnalysis(a) {
  const box = $('#analysis')
  box.dataset.status = 'ready'
  box.setAttribute('aria-busy', 'false')
  $('#analysis-status').textContent = ''
  const paragraphs = a.narrative.split(/\n\s*\n/).map((p) => p.trim()).filter(Boolean)
  $('#analysis-text').replaceChildren(...paragraphs.map((p) => el('p', {}, p)))
  $('#analysis-text').dataset.source = a.source
  $('#analysis-recommendations').replaceChildren(...a.recommendations.map((t) => el('li', {}, t)))
  announce('Your personal analysis is ready.')
}

// ---------------------------------------------------------------------------------------------------------------
// Starting, resuming and losing a session.

function renderGone(titleText, text, canRestart) {
  show('gone')
  $('#gone-title').textContent = titleText
  $('#gone-text').textContent = text
  $('#restart').hidden = !canRestart
  $('#retry').hidden = true
  focusHeading('#gone-title')
}

function sessionLost() {
  api.forgetToken(publicKey)
  token = null
  renderGone('This session is no longer available', 'It may have been closed or removed. You can start again.', true)
}

// On first load focus stays where the browser puts it (the top of the page); after "Take it again" it moves here.
function showIntro({ focus = true } = {}) {
  show('intro')
  $('#intro-error').textContent = ''
  if (focus) focusHeading('#intro-title')
}

async function start() {
  if (busy) return
  $('#intro-error').textContent = ''
  setBusy(true, $('#start'))
  let res = await api.startSession(publicKey, linkCode)
  // A link that is no longer active still leaves the assessment itself open, unattributed.
  if (res.status === 404 && linkCode) res = await api.startSession(publicKey, null)
  setBusy(false, $('#start'))
  if (res.status === 201) {
    token = res.json.token
    api.saveToken(publicKey, token)
    return render(res.json.state)
  }
  if (res.status === 404) return renderGone('This assessment is not available', 'It may have been withdrawn, or the link is incomplete. Check the link you were given, or ask the person who shared it for a new one.', false)
  $('#intro-error').textContent = api.messageOf(res)
}

async function resume() {
  const res = await api.viewSession(token)
  if (res.status === 200) return render(res.json)
  if (res.status === 404) {
    // The stored session is gone (closed, or the database was reset): begin again rather than show an error.
    api.forgetToken(publicKey)
    token = null
    return showIntro({ focus: false })
  }
  // Anything else (offline, a 5xx): keep the session and offer to try again, never a new start over it.
  renderGone('Your assessment could not be loaded', api.messageOf(res), false)
  $('#retry').hidden = false
}

function again() {
  api.forgetToken(publicKey)
  token = null
  const box = $('#analysis')
  delete box.dataset.resultId
  showIntro()
}

$('#start').addEventListener('click', start)
$('#question-form').addEventListener('submit', submitAnswer)
$('#back').addEventListener('click', goBack)
$('#profile-form').addEventListener('submit', submitProfile)
$('#profile-back').addEventListener('click', goBack)
$('#again').addEventListener('click', again)
$('#restart').addEventListener('click', again)
$('#retry').addEventListener('click', () => { show('loading'); void resume() })

if (token) void resume()
else showIntro({ focus: false })
