// The public assessment routes of this service, and where the page keeps its session's resume token.
//
// The token (ast_…) is the session's only credential: the start answers it once, and every later call names the
// session by it. It lives in session storage under the assessment's public key (gone with the tab, never in a URL,
// a cookie or local storage), so a reload resumes the same session at the same question.

// This module is served at <base>/assessments/page/api.js: the routes are relative to it, so the page also works
// behind a proxy that mounts the service under a path.
const BASE = new URL('../', import.meta.url)
const url = (path) => new URL(path, BASE).toString()

const storageKey = (publicKey) => `assessment.token.${publicKey}`
export const savedToken = (publicKey) => sessionStorage.getItem(storageKey(publicKey))
export const saveToken = (publicKey, token) => sessionStorage.setItem(storageKey(publicKey), token)
export const forgetToken = (publicKey) => sessionStorage.removeItem(storageKey(publicKey))

/**
 * One call: `{ status, json }`, or `{ status: 0 }` when the network failed. Errors come in the product's one shape,
 * `{ error: { code, message, details?, requestId } }`.
 */
async function call(method, path, body) {
  try {
    const res = await fetch(url(path), {
      method,
      headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      // Same origin: the partner link's visitor cookie (HttpOnly, set by /l/<code>) goes with the start.
      credentials: 'same-origin',
      referrerPolicy: 'no-referrer',
      cache: 'no-store',
    })
    const json = await res.json().catch(() => ({}))
    return { status: res.status, json }
  } catch {
    return { status: 0, json: {} }
  }
}

const session = (token) => `sessions/${encodeURIComponent(token)}`

/** Starts through the partner link when there is one (the session names the link and partner), else by public key. */
export const startSession = (publicKey, linkCode) =>
  linkCode
    ? call('POST', `links/${encodeURIComponent(linkCode)}/sessions`, {})
    : call('POST', `${encodeURIComponent(publicKey)}/sessions`, {})
export const viewSession = (token) => call('GET', session(token))
export const answer = (token, body) => call('POST', `${session(token)}/answers`, body)
export const back = (token) => call('POST', `${session(token)}/back`)
export const saveProfile = (token, demographics) => call('PUT', `${session(token)}/profile`, { demographics })
export const complete = (token) => call('POST', `${session(token)}/complete`)
export const analysis = (token) => call('GET', `${session(token)}/analysis`)

/** The message of an error answer, for a person. */
export function messageOf(res) {
  if (res.status === 0) return 'Could not reach the server. Check your connection and try again.'
  const error = res.json?.error
  if (res.status === 429) return error?.message ? `Too many requests: ${error.message.replace(/^too many [^;]*;\s*/, '')}.` : 'Too many requests; wait a moment and try again.'
  if (res.status >= 500 || !error?.message) return `Something went wrong on our side (${res.status}). Try again in a moment.`
  return capitalize(error.message)
}

export const capitalize = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s)
