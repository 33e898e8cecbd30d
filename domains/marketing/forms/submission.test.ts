import { describe, expect, it } from 'vitest'
import { type FormFieldInput, FormDefinition } from './schemas.js'
import { type SubmissionResult, validateSubmission } from './submission.js'

/** A field of the one-field forms below, which all call their field "answer". */
type AnswerField = Omit<FormFieldInput, 'name' | 'label'>

const NOW = new Date('2025-03-10T12:00:00Z')

const makeForm = (fields: FormFieldInput[], overrides: Record<string, unknown> = {}) =>
  FormDefinition.parse({ name: 'Test form', fields, allowedOrigins: ['https://example.com'], ...overrides })

const submit = (form: FormDefinition, body: Record<string, unknown>) => validateSubmission(form, body, { defaultCountry: 'BR', now: NOW })

function values(result: SubmissionResult) {
  if (!result.ok) throw new Error(`expected ok, got ${JSON.stringify(result.errors)}`)
  return result.values
}

function errors(result: SubmissionResult) {
  if (result.ok) throw new Error('expected errors')
  return result.errors
}

const contactForm = makeForm([
  { name: 'name', label: 'Name', type: 'text', required: true, maxLength: 100 },
  { name: 'email', label: 'Email', type: 'email' },
  { name: 'phone', label: 'WhatsApp', type: 'phone', required: true },
  { name: 'company', label: 'Company', type: 'text' },
  { name: 'employees', label: 'Employees', type: 'number', min: 1, max: 100_000 },
  { name: 'plan', label: 'Plan', type: 'select', options: [{ value: 'basic', label: 'Basic' }, { value: 'pro', label: 'Pro' }] },
  {
    name: 'interests',
    label: 'Interests',
    type: 'select',
    multiple: true,
    options: [{ value: 'ads', label: 'Ads' }, { value: 'bots', label: 'Bots' }, { value: 'crm', label: 'CRM' }],
  },
  { name: 'newsletter', label: 'Send me news', type: 'checkbox' },
  { name: 'campaign', label: 'Campaign', type: 'hidden', defaultValue: 'spring' },
])

describe('validateSubmission: JSON and urlencoded bodies', () => {
  const expected = {
    name: 'Ana Souza',
    email: 'ana@example.com',
    phone: '+5511987654321',
    company: 'Padaria Boa',
    employees: 12,
    plan: 'pro',
    interests: ['ads', 'crm'],
    newsletter: true,
    campaign: 'spring',
  }

  it('accepts a JSON body with typed values', () => {
    const result = submit(contactForm, {
      name: ' Ana Souza ', email: 'Ana@Example.com', phone: '(11) 98765-4321', company: 'Padaria Boa',
      employees: 12, plan: 'pro', interests: ['ads', 'crm'], newsletter: true,
    })
    expect(values(result)).toEqual(expected)
    expect(result.ok && result.lead).toEqual({ name: 'Ana Souza', email: 'ana@example.com', phoneE164: '+5511987654321', company: 'Padaria Boa' })
  })

  it('accepts the same answers urlencoded, where everything is a string and repeated keys are arrays', () => {
    const result = submit(contactForm, {
      name: 'Ana Souza', email: 'ana@example.com', phone: '+55 11 98765-4321', company: 'Padaria Boa',
      employees: '12', plan: 'pro', interests: ['ads', 'crm'], newsletter: 'on',
    })
    expect(values(result)).toEqual(expected)
  })

  it('reads bracketed keys for multiple selects', () => {
    expect(values(submit(contactForm, { name: 'Ana', phone: '11987654321', 'interests[]': ['bots'] })).interests).toEqual(['bots'])
  })

  it('treats empty strings as unanswered, as browsers post empty inputs', () => {
    const result = submit(contactForm, { name: 'Ana', phone: '11987654321', email: '', company: '', employees: '', plan: '', campaign: '' })
    expect(values(result)).toEqual({ name: 'Ana', phone: '+5511987654321', newsletter: false, campaign: 'spring' })
    expect(result.ok && result.lead).toEqual({ name: 'Ana', phoneE164: '+5511987654321' })
  })

  it('ignores unknown keys, including inherited ones', () => {
    const form = makeForm([{ name: 'constructor', label: 'Tricky', type: 'text' }])
    expect(values(submit(form, { admin: true, tenant_id: 'x' }))).toEqual({})
  })
})

describe('validateSubmission: every bad field is named', () => {
  it('reports all errors at once, in form order', () => {
    const result = submit(contactForm, {
      email: 'not-an-email', phone: '123', employees: '0', plan: 'enterprise', interests: ['ads', 'nope'], newsletter: 'maybe',
    })
    expect(errors(result)).toEqual([
      { field: 'name', message: 'is required' },
      { field: 'email', message: 'must be a valid email address' },
      { field: 'phone', message: 'must be a valid phone number' },
      { field: 'employees', message: 'must be at least 1' },
      { field: 'plan', message: 'must be one of the options' },
      { field: 'interests', message: 'must be one of the options' },
      { field: 'newsletter', message: 'must be checked or unchecked' },
    ])
  })
})

describe('validateSubmission: field types', () => {
  it.each<[string, AnswerField, unknown, { value: unknown } | { error: string } | { absent: true }]>([
    // text
    ['trims text', { type: 'text' }, '  hi  ', { value: 'hi' }],
    ['accepts text at maxLength', { type: 'text', maxLength: 5 }, 'abcde', { value: 'abcde' }],
    ['rejects text past maxLength', { type: 'text', maxLength: 5 }, 'abcdef', { error: 'must be at most 5 characters' }],
    ['limits text to 1000 characters by default', { type: 'text' }, 'x'.repeat(1001), { error: 'must be at most 1000 characters' }],
    ['counts an emoji as one character', { type: 'text', maxLength: 2 }, '👍👍', { value: '👍👍' }],
    ['rejects text under minLength', { type: 'text', minLength: 3 }, 'ab', { error: 'must be at least 3 characters' }],
    ['takes a JSON number as text', { type: 'text' }, 1234, { value: '1234' }],
    ['rejects an object for text', { type: 'text' }, { a: 1 }, { error: 'must be a single value' }],
    ['rejects a boolean for text', { type: 'text' }, true, { error: 'must be text' }],
    ['rejects repeated keys for a single value', { type: 'text' }, ['a', 'b'], { error: 'expected a single value' }],
    ['takes a single repeated key', { type: 'text' }, ['a'], { value: 'a' }],
    ['rejects NUL characters, which PostgreSQL cannot store', { type: 'text' }, 'a\u0000b', { error: 'contains invalid characters' }],
    ['treats null as unanswered', { type: 'text' }, null, { absent: true }],
    // email
    ['normalizes an email', { type: 'email' }, ' Ana.Souza+promo@Gmail.com ', { value: 'ana.souza+promo@gmail.com' }],
    ['rejects a bad email', { type: 'email' }, 'ana@', { error: 'must be a valid email address' }],
    // phone
    ['normalizes a national phone with the form country', { type: 'phone' }, '(21) 99876-5432', { value: '+5521998765432' }],
    ['normalizes an international phone', { type: 'phone' }, '+1 201 555 0123', { value: '+12015550123' }],
    ['takes a JSON number as a phone', { type: 'phone' }, 5511987654321, { value: '+5511987654321' }],
    ['rejects a bad phone', { type: 'phone' }, '12345', { error: 'must be a valid phone number' }],
    // number
    ['takes a JSON number', { type: 'number' }, 3.5, { value: 3.5 }],
    ['coerces a numeric string', { type: 'number' }, ' -42.5 ', { value: -42.5 }],
    ['rejects hex', { type: 'number' }, '0x10', { error: 'must be a number' }],
    ['rejects exponents', { type: 'number' }, '1e9', { error: 'must be a number' }],
    ['rejects words', { type: 'number' }, 'twelve', { error: 'must be a number' }],
    ['rejects a number above max', { type: 'number', max: 10 }, '11', { error: 'must be at most 10' }],
    ['accepts the bounds', { type: 'number', min: 1, max: 10 }, 10, { value: 10 }],
    ['rejects NaN from JSON', { type: 'number' }, Number.NaN, { error: 'must be a single value' }],
    // select
    ['accepts an option', { type: 'select', options: [{ value: 'a', label: 'A' }] }, 'a', { value: 'a' }],
    ['rejects a label instead of a value', { type: 'select', options: [{ value: 'a', label: 'A' }] }, 'A', { error: 'must be one of the options' }],
    ['rejects several values for a single select', { type: 'select', options: [{ value: 'a', label: 'A' }, { value: 'b', label: 'B' }] }, ['a', 'b'], { error: 'expected a single value' }],
    ['takes a lone string for a multiple select', { type: 'select', multiple: true, options: [{ value: 'a', label: 'A' }] }, 'a', { value: ['a'] }],
    ['removes repeated choices', { type: 'select', multiple: true, options: [{ value: 'a', label: 'A' }] }, ['a', 'a'], { value: ['a'] }],
    ['treats an empty choice list as unanswered', { type: 'select', multiple: true, options: [{ value: 'a', label: 'A' }] }, [], { absent: true }],
    // checkbox
    ['reads "on" as checked', { type: 'checkbox' }, 'on', { value: true }],
    ['reads "yes" as checked', { type: 'checkbox' }, 'YES', { value: true }],
    ['reads "1" as checked', { type: 'checkbox' }, '1', { value: true }],
    ['reads "false" as unchecked', { type: 'checkbox' }, 'false', { value: false }],
    ['reads an absent box as unchecked', { type: 'checkbox' }, undefined, { value: false }],
    ['reads JSON 1 as checked', { type: 'checkbox' }, 1, { value: true }],
    ['lets the last of repeated values win (hidden "false" + box)', { type: 'checkbox' }, ['false', 'on'], { value: true }],
    ['rejects other words', { type: 'checkbox' }, 'checked', { error: 'must be checked or unchecked' }],
    // hidden
    ['uses the default when a hidden field is not posted', { type: 'hidden', defaultValue: 'spring' }, undefined, { value: 'spring' }],
    ['keeps the posted value of a hidden field', { type: 'hidden', defaultValue: 'spring' }, 'summer', { value: 'summer' }],
  ])('%s', (_story, field, raw, outcome) => {
    const form = makeForm([{ name: 'answer', label: 'Answer', ...field }], { defaultCountry: 'BR' })
    const result = submit(form, raw === undefined ? {} : { answer: raw })
    if ('error' in outcome) expect(errors(result)).toEqual([{ field: 'answer', message: outcome.error }])
    else if ('absent' in outcome) expect(values(result)).not.toHaveProperty('answer')
    else expect(values(result).answer).toEqual(outcome.value)
  })

  it.each<[string, AnswerField, string]>([
    ['text', { type: 'text' }, 'is required'],
    ['email', { type: 'email' }, 'is required'],
    ['number', { type: 'number' }, 'is required'],
    ['multiple select', { type: 'select', multiple: true, options: [{ value: 'a', label: 'A' }] }, 'is required'],
    ['checkbox', { type: 'checkbox' }, 'must be checked'],
    ['hidden without a default', { type: 'hidden' }, 'is required'],
  ])('requires a %s field', (_story, field, message) => {
    const form = makeForm([{ name: 'answer', label: 'Answer', required: true, ...field }])
    expect(errors(submit(form, {}))).toEqual([{ field: 'answer', message }])
  })

  it('lets a form country win over the tenant default', () => {
    const form = makeForm([{ name: 'phone', label: 'Phone', type: 'phone' }], { defaultCountry: 'PT' })
    expect(values(submit(form, { phone: '912 345 678' })).phone).toBe('+351912345678')
    const withoutCountry = makeForm([{ name: 'phone', label: 'Phone', type: 'phone' }])
    expect(values(validateSubmission(withoutCountry, { phone: '(201) 555-0123' }, { defaultCountry: 'US' })).phone).toBe('+12015550123')
  })
})

describe('validateSubmission: meta', () => {
  const form = makeForm([{ name: 'email', label: 'Email', type: 'email', required: true }])

  it('returns utm tags, page and referrer apart from the values', () => {
    const result = submit(form, {
      email: 'ana@example.com', utm_source: 'instagram', utm_medium: 'paid', utm_campaign: 'spring_sale', utm_term: '', utm_content: ['story'],
      page_url: 'https://example.com/landing?utm_source=instagram', referrer: 'https://l.instagram.com/', consent: 'on', started_at: NOW.getTime() - 20_000,
    })
    expect(values(result)).toEqual({ email: 'ana@example.com' })
    expect(result.meta).toEqual({
      utm: { utm_source: 'instagram', utm_medium: 'paid', utm_campaign: 'spring_sale', utm_content: 'story' },
      consent: true,
      pageUrl: 'https://example.com/landing?utm_source=instagram',
      referrer: 'https://l.instagram.com/',
      startedAt: new Date(NOW.getTime() - 20_000),
      fillSeconds: 20,
      spam: { honeypot: false, tooFast: false },
    })
  })

  it('flags a filled honeypot without failing the submission', () => {
    const result = submit(form, { email: 'bot@example.com', website: 'http://spam.example' })
    expect(result.ok).toBe(true)
    expect(result.meta.spam.honeypot).toBe(true)
    expect(submit(form, { email: 'bot@example.com', website: ['a', 'b'] }).meta.spam.honeypot).toBe(true)
    expect(submit(form, { email: 'ana@example.com', website: '' }).meta.spam.honeypot).toBe(false)
  })

  it('uses the form honeypot name', () => {
    const custom = makeForm([{ name: 'email', label: 'Email', type: 'email' }], { honeypotField: 'fax' })
    expect(submit(custom, { fax: '123', website: 'x' }).meta.spam.honeypot).toBe(true)
    expect(submit(custom, { website: 'x' }).meta.spam.honeypot).toBe(false)
  })

  it.each<[string, unknown, boolean, number | undefined]>([
    ['milliseconds', NOW.getTime() - 1_000, true, 1],
    ['a millisecond string', String(NOW.getTime() - 1_000), true, 1],
    ['an ISO string', new Date(NOW.getTime() - 60_000).toISOString(), false, 60],
    ['a future time (visitor clock ahead)', NOW.getTime() + 5_000, false, -5],
    ['a time from last year', '2024-01-01T00:00:00Z', false, undefined],
    ['garbage', 'yesterday', false, undefined],
  ])('reads a fill start given as %s', (_story, startedAt, tooFast, fillSeconds) => {
    const result = submit(form, { email: 'ana@example.com', _ts: startedAt })
    expect(result.meta.spam.tooFast).toBe(tooFast)
    expect(result.meta.fillSeconds).toBe(fillSeconds)
  })

  it('does not flag fast fills when the form turned the check off', () => {
    const off = makeForm([{ name: 'email', label: 'Email', type: 'email' }], { minFillSeconds: 0 })
    expect(submit(off, { started_at: NOW.getTime() - 500 }).meta.spam.tooFast).toBe(false)
  })

  it('drops page urls that are not http(s)', () => {
    expect(submit(form, { email: 'ana@example.com', page_url: 'javascript:alert(1)', referrer: 'android-app://x' }).meta).not.toHaveProperty('pageUrl')
  })

  it('returns meta with errors too, so a bot can be answered quietly', () => {
    const result = submit(form, { website: 'spam' })
    expect(errors(result)).toEqual([{ field: 'email', message: 'is required' }])
    expect(result.meta.spam.honeypot).toBe(true)
  })

  it('requires consent when the form does', () => {
    const withConsent = makeForm([{ name: 'email', label: 'Email', type: 'email' }], { consent: { required: true, text: 'I agree', policyVersion: 'v3' } })
    expect(errors(submit(withConsent, { email: 'ana@example.com' }))).toEqual([{ field: 'consent', message: 'consent is required' }])
    expect(errors(submit(withConsent, { email: 'ana@example.com', consent: 'false' }))).toEqual([{ field: 'consent', message: 'consent is required' }])
    expect(submit(withConsent, { email: 'ana@example.com', consent: 'yes' }).ok).toBe(true)
    expect(submit(withConsent, { email: 'ana@example.com', consent: true }).ok).toBe(true)
  })
})
