import { describe, expect, it } from 'vitest'
import { AllowedOrigin, FormDefinition, FormField, type FormFieldInput, UpdateFormBody } from './schemas.js'

const form = (overrides: Record<string, unknown> = {}) => ({
  name: 'Contact us',
  fields: [
    { name: 'name', label: 'Name', type: 'text', required: true },
    { name: 'email', label: 'Email', type: 'email' },
    { name: 'phone', label: 'WhatsApp', type: 'phone', required: true },
  ],
  allowedOrigins: ['https://example.com'],
  defaultCountry: 'BR',
  ...overrides,
})

/** The issue paths (dot-joined) and messages of a failed parse. */
function issues(result: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) {
  expect(result.success).toBe(false)
  return result.error!.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }))
}

describe('FormField', () => {
  it('fills defaults and infers which lead field each field fills', () => {
    const parse = (field: FormFieldInput) => FormField.parse(field)
    expect(parse({ name: 'name', label: 'Name', type: 'text' })).toMatchObject({ required: false, maxLength: 1000, maps_to: 'name' })
    expect(parse({ name: 'work_email', label: 'Email', type: 'email' }).maps_to).toBe('email')
    expect(parse({ name: 'mobile', label: 'Mobile', type: 'phone' }).maps_to).toBe('phone')
    expect(parse({ name: 'company', label: 'Company', type: 'text' }).maps_to).toBe('company')
    expect(parse({ name: 'message', label: 'Message', type: 'text', maxLength: 5000 })).toMatchObject({ maxLength: 5000, maps_to: null })
    expect(parse({ name: 'email', label: 'Email', type: 'email', maps_to: null }).maps_to).toBeNull()
    expect(parse({ name: 'full_name', label: 'Full name', type: 'text', maps_to: 'name' }).maps_to).toBe('name')
  })

  it.each<[string, Record<string, unknown>, string, string]>([
    ['a select without options', { type: 'select' }, 'options', 'a select field needs at least one option'],
    ['a select with an empty option list', { type: 'select', options: [] }, 'options', 'Too small: expected array to have >=1 items'],
    ['repeated option values', { type: 'select', options: [{ value: 'a', label: 'A' }, { value: 'a', label: 'B' }] }, 'options.1.value', 'option value "a" is repeated'],
    ['options on a text field', { type: 'text', options: [{ value: 'a', label: 'A' }] }, 'options', 'only applies to select fields'],
    ['min on a text field', { type: 'text', min: 1 }, 'min', 'only applies to number fields'],
    ['a default on a text field', { type: 'text', defaultValue: 'x' }, 'defaultValue', 'only applies to hidden fields'],
    ['minLength above maxLength', { type: 'text', minLength: 10, maxLength: 5 }, 'minLength', 'cannot exceed maxLength'],
    ['min above max', { type: 'number', min: 10, max: 5 }, 'min', 'cannot exceed max'],
    ['a lead email from a text field', { type: 'text', maps_to: 'email' }, 'maps_to', "the lead's email can only come from email fields"],
    ['a lead name from a multiple select', { type: 'select', multiple: true, options: [{ value: 'a', label: 'A' }], maps_to: 'company' }, 'maps_to', 'a multiple select cannot fill a lead field'],
    ['an upper-case name', { name: 'Email' }, 'name', 'lowercase letters, digits and underscores, starting with a letter, at most 63 characters'],
    ['a name starting with a digit', { name: '1st' }, 'name', 'lowercase letters, digits and underscores, starting with a letter, at most 63 characters'],
    ['an unknown property', { maxlength: 10 }, '', 'Unrecognized key: "maxlength"'],
  ])('rejects %s', (_story, overrides, path, message) => {
    expect(issues(FormField.safeParse({ name: 'field', label: 'Field', type: 'text', ...overrides }))).toContainEqual({ path, message })
  })
})

describe('FormDefinition', () => {
  it('accepts a complete form and fills the defaults', () => {
    const parsed = FormDefinition.parse(form({ consent: { required: true, text: 'I agree to be contacted', policyVersion: '2024-05' } }))
    expect(parsed).toMatchObject({ honeypotField: 'website', minFillSeconds: 3, defaultCountry: 'BR', allowedOrigins: ['https://example.com'] })
    expect(parsed.fields.map((field) => field.maps_to)).toEqual(['name', 'email', 'phone'])
  })

  it('names duplicate field names', () => {
    const result = FormDefinition.safeParse(form({ fields: [{ name: 'email', label: 'A', type: 'email' }, { name: 'email', label: 'B', type: 'text' }] }))
    expect(issues(result)).toContainEqual({ path: 'fields.1.name', message: '"email" is already the name of field 0' })
  })

  it('allows one field per lead field and says how to fix a second one', () => {
    const twoEmails = form({ fields: [{ name: 'email', label: 'Email', type: 'email' }, { name: 'manager_email', label: 'Manager', type: 'email' }] })
    expect(issues(FormDefinition.safeParse(twoEmails))).toContainEqual({
      path: 'fields.1.maps_to',
      message: `the lead's email is already filled by "email"; set maps_to: null on one of them`,
    })
    const fixed = form({ fields: [{ name: 'email', label: 'Email', type: 'email' }, { name: 'manager_email', label: 'Manager', type: 'email', maps_to: null }] })
    expect(FormDefinition.safeParse(fixed).success).toBe(true)
  })

  it.each([
    ['a reserved name', [{ name: 'utm_source', label: 'Source', type: 'hidden' }], 'fields.0.name', '"utm_source" is reserved for submission metadata'],
    ['the honeypot name', [{ name: 'website', label: 'Site', type: 'text' }], 'fields.0.name', `"website" is the form's honeypot field; rename one of them`],
  ])('rejects a field with %s', (_story, fields, path, message) => {
    expect(issues(FormDefinition.safeParse(form({ fields })))).toContainEqual({ path, message })
  })

  it.each([
    ['no fields', { fields: [] }, 'fields'],
    ['51 fields', { fields: Array.from({ length: 51 }, (_, i) => ({ name: `f${i}`, label: 'F', type: 'text' })) }, 'fields'],
    ['an unknown country', { defaultCountry: 'XX' }, 'defaultCountry'],
    ['a lowercase country', { defaultCountry: 'br' }, 'defaultCountry'],
    ['a javascript: redirect', { redirectUrl: 'javascript:alert(1)' }, 'redirectUrl'],
    ['a relative redirect', { redirectUrl: '/thanks' }, 'redirectUrl'],
    ['a negative fill time', { minFillSeconds: -1 }, 'minFillSeconds'],
    ['consent without text', { consent: { required: true, text: '', policyVersion: 'v1' } }, 'consent.text'],
    ['a bad origin', { allowedOrigins: ['https://example.com', 'example.com'] }, 'allowedOrigins.1'],
  ])('rejects %s', (_story, overrides, path) => {
    expect(issues(FormDefinition.safeParse(form(overrides))).map((issue) => issue.path)).toContain(path)
  })

  it('accepts 0 to disable the fill-time check and an absolute redirect', () => {
    expect(FormDefinition.parse(form({ minFillSeconds: 0, redirectUrl: 'https://example.com/thanks?from=form' }))).toMatchObject({ minFillSeconds: 0 })
  })
})

describe('AllowedOrigin', () => {
  it.each([
    ['https://example.com', 'https://example.com'],
    ['https://Example.COM/', 'https://example.com'],
    ['https://shop.example.com:8443', 'https://shop.example.com:8443'],
    ['https://example.com:443', 'https://example.com'],
    ['http://localhost:3000', 'http://localhost:3000'],
    ['http://127.0.0.1:5173', 'http://127.0.0.1:5173'],
    ['https://bücher.de', 'https://xn--bcher-kva.de'],
  ])('accepts %s as %s', (text, origin) => {
    expect(AllowedOrigin.parse(text)).toBe(origin)
  })

  it.each([
    'example.com',
    'http://example.com', // http only for localhost
    'https://example.com/contact',
    'https://example.com?x=1',
    'https://example.com#top',
    'https://user:pw@example.com',
    'https://*.example.com',
    'https://intranet',
    'ftp://example.com',
    'null',
    '*',
  ])('rejects %s', (text) => {
    expect(AllowedOrigin.safeParse(text).success).toBe(false)
  })

  it('removes duplicates that differ only in spelling', () => {
    expect(FormDefinition.parse(form({ allowedOrigins: ['https://example.com', 'https://EXAMPLE.com/'] })).allowedOrigins).toEqual(['https://example.com'])
  })
})

describe('UpdateFormBody', () => {
  it('keeps omitted properties omitted instead of resetting them to defaults', () => {
    expect(UpdateFormBody.parse({ name: 'Renamed' })).toEqual({ name: 'Renamed' })
  })

  it('lets optional settings be cleared with null', () => {
    expect(UpdateFormBody.parse({ redirectUrl: null, consent: null })).toEqual({ redirectUrl: null, consent: null })
  })

  it('still checks the fields it is given', () => {
    expect(UpdateFormBody.safeParse({ fields: [{ name: 'plan', label: 'Plan', type: 'select' }] }).success).toBe(false)
    expect(UpdateFormBody.safeParse({}).success).toBe(false)
  })
})
