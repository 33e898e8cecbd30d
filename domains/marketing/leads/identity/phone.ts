import { type CountryCode, type PhoneNumber, isSupportedCountry, parsePhoneNumberFromString } from 'libphonenumber-js/max'

export type { CountryCode }

// The `max` metadata validates numbers against the allocated ranges of each type (mobile, fixed line…), not just
// their length: it is what tells a Brazilian landline from a mobile, and it catches typos a length check passes.

/** Longer than any phone number anyone types, formatting included; past this we do not even try. */
const MAX_INPUT_LENGTH = 64

export type NormalizedPhone = { e164: string; country?: CountryCode }

/**
 * Parses a phone number as a person typed it into a form: international ("+55 11 98765-4321", "0055 11 …",
 * "5511987654321") or national ("(11) 98765-4321" with defaultCountry BR). Returns the E.164 number we can dial
 * today, or null when it is not a valid number. Extensions are dropped: they never identify a person.
 *
 * The two legacy mobile spellings still in circulation (Brazil without the ninth digit, Mexico with "1" after
 * +52) are not valid numbers any more; they are accepted and rewritten to today's number.
 */
export function normalizePhone(raw: string, defaultCountry?: CountryCode): NormalizedPhone | null {
  if (typeof raw !== 'string') return null
  const text = raw.trim()
  if (text.length === 0 || text.length > MAX_INPUT_LENGTH) return null
  const country = defaultCountry && isSupportedCountry(defaultCountry) ? defaultCountry : undefined

  for (const candidate of candidateSpellings(text, country)) {
    const parsed = parsePhoneNumberFromString(candidate.text, candidate.country)
    if (!parsed) continue
    if (parsed.isValid()) return toNormalized(parsed)
    const current = currentMobileFromLegacy(parsed.number)
    if (current) {
      const repaired = parsePhoneNumberFromString(current)
      if (repaired?.isValid()) return toNormalized(repaired)
    }
  }
  return null
}

/**
 * The E.164 spelling of a WhatsApp id (Meta's `wa_id`: digits, country code first, no '+'), or null when it is
 * not a phone number. The digits are kept as WhatsApp sent them, even for a legacy Brazilian or Mexican id: that
 * id is the address WhatsApp knows the person by, so it is what we reply to. Match people with phoneMatchKey.
 */
export function waIdToE164(waId: string): string | null {
  if (typeof waId !== 'string' || !/^[1-9]\d{6,14}$/.test(waId)) return null
  const e164 = `+${waId}`
  const parsed = parsePhoneNumberFromString(e164)
  if (parsed?.isValid() && parsed.number === e164) return e164
  const current = currentMobileFromLegacy(e164)
  return current && parsePhoneNumberFromString(current)?.isValid() ? e164 : null
}

/**
 * One key per person: the E.164 number with the national spellings that WhatsApp and people disagree on folded
 * into one. A form's phone and the same person's wa_id give the same key. The rules (see README.md):
 * - Brazil: a mobile without the ninth digit gets it (+55 21 8765-4321 → +55 21 98765-4321); landlines are untouched.
 * - Mexico: the retired mobile prefix 1 is dropped (+52 1 55 … → +52 55 …).
 * - Argentina: the mobile 9 after +54 is dropped (+54 9 11 … → +54 11 …): Argentine mobiles and landlines share
 *   one 10-digit plan, so the 9 only says how to dial, not who answers.
 * - Everyone else: the E.164 number itself.
 *
 * Keys are stored, so the rules are plain digit rules over E.164 and do not depend on the libphonenumber metadata
 * of the day: an update of the library must never move a person to a new key. Idempotent: key(key(x)) = key(x).
 */
export function phoneMatchKey(e164: string): string {
  const digits = e164.replace(/[\s().\-]/g, '').replace(/^\+/, '')
  // A malformed input must not become a key that every other malformed input shares.
  if (!/^[1-9]\d{6,14}$/.test(digits)) throw new TypeError('phoneMatchKey expects an E.164 number') // no value: it is personal data and errors get logged
  const current = currentMobileFromLegacy(`+${digits}`) ?? `+${digits}`
  // Argentina: WhatsApp and libphonenumber spell a mobile +54 9 + 10 digits (a national "011 15 xxxx-xxxx" parses
  // to that), but CRMs, SMS gateways and people abroad write the same line as +54 + 10 digits.
  const ar = /^\+549(\d{10})$/.exec(current)
  return ar ? `+54${ar[1]}` : current
}

/**
 * Today's mobile number for the two legacy spellings WhatsApp still hands out, or null when the number is not one.
 * Country calling codes are prefix-free, so "+55", "+52" alone identify Brazil and Mexico.
 */
function currentMobileFromLegacy(e164: string): string | null {
  // Brazil: DDD (two digits, never 0) + 8-digit subscriber. ANATEL gave every mobile a leading 9 (2012-2016);
  // before that, mobiles started with 6-9 and landlines with 2-5, which still holds for landlines. WhatsApp kept
  // the 8-digit id for accounts older than the change (mostly outside DDDs 11-19, 21, 22, 24, 27, 28).
  const br = /^\+55([1-9][1-9])([6-9]\d{7})$/.exec(e164)
  if (br) return `+55${br[1]}9${br[2]}`
  // Mexico: until 2019 mobiles were dialled from abroad as +52 1 + 10 digits; WhatsApp ids of that era start with
  // 521. Mexican national numbers are 10 digits and never start with 1, so the 1 is always the old prefix.
  const mx = /^\+521(\d{10})$/.exec(e164)
  if (mx) return `+52${mx[1]}`
  return null
}

function* candidateSpellings(text: string, country: CountryCode | undefined): Generator<{ text: string; country?: CountryCode }> {
  if (text.startsWith('+')) {
    yield { text }
    return
  }
  const digits = text.replace(/[\s().\-/]/g, '')
  // "00" is the international prefix almost everywhere, but libphonenumber reads it only through the default
  // country's own prefix, and Brazil's is "00 + carrier" (0055 there means carrier 55). People who type 00 then a
  // country code mean the country code, so that reading goes first.
  if (digits.startsWith('00')) yield { text: `+${digits.slice(2)}` }
  if (country) yield { text, country }
  // Digits only with the country code first and no '+', as WhatsApp and many CRMs write them.
  if (/^[1-9]\d{6,14}$/.test(digits)) yield { text: `+${digits}` }
}

const toNormalized = (parsed: PhoneNumber): NormalizedPhone =>
  parsed.country ? { e164: parsed.number, country: parsed.country } : { e164: parsed.number }
