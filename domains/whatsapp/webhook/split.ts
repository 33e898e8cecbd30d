import { z } from 'zod'
import { sha256 } from '../../../lib/crypto.js'
import {
  type FIELD_SCHEMAS, type KnownField, type AccountUpdateValue, type PhoneNumberNameValue, type PhoneNumberQualityValue,
  type TemplateCategoryValue, type TemplateQualityValue, type TemplateStatusValue,
  Contact, MessageStatus, MessagesValueShell, UnixSeconds, WaError, FIELD_SCHEMAS as SCHEMAS, isKnownField, parseInboundMessage,
} from './payload.js'
import {
  type NormalizedError, type NormalizedMessage, type NormalizedStatus,
  contentOf, fromUnixSeconds, isObject, normalizeError, toNormalizedMessage, toNormalizedStatus,
} from './normalize.js'

/** Which business phone number a `messages` change belongs to. */
interface PhoneScope {
  wabaId: string
  phoneNumberId: string
  displayPhoneNumber: string
}

/** A message that failed its schema but still had an id: kept with what could be read, never dropped. */
export type UnparsedMessage = Omit<NormalizedMessage, 'type' | 'timestamp'> & { type: 'unknown'; timestamp: Date | null }

interface MessageItemBase extends PhoneScope {
  kind: 'message'
  itemKey: string
  /** The sender's profile name from the change's `contacts[]`, when Meta sent one for this sender. */
  contactName: string | null
  /** The message object exactly as received, unknown keys included. */
  raw: unknown
}
export type MessageItem =
  | (MessageItemBase & { message: NormalizedMessage; parseError: null })
  | (MessageItemBase & { message: UnparsedMessage; parseError: string })

export interface StatusItem extends PhoneScope {
  kind: 'status'
  itemKey: string
  status: NormalizedStatus
  raw: unknown
}

/** A value-level error of a `messages` change (e.g. 130429 rate limit hit), not tied to one message. */
export interface ErrorItem extends PhoneScope {
  kind: 'error'
  itemKey: string
  error: NormalizedError
  raw: unknown
}

/** Management changes: `at` is the entry's `time` (unix seconds), when Meta sent one. */
interface ManagementBase {
  itemKey: string
  wabaId: string
  at: Date | null
}

export interface TemplateStatusItem extends ManagementBase {
  kind: 'template_status'
  templateId: string
  event: string
  value: TemplateStatusValue
}

export interface TemplateQualityItem extends ManagementBase {
  kind: 'template_quality'
  templateId: string
  previousScore: string
  newScore: string
  value: TemplateQualityValue
}

export interface TemplateCategoryItem extends ManagementBase {
  kind: 'template_category'
  templateId: string
  previousCategory: string | null
  newCategory: string | null
  /** Set on an impending change notice; the change then happens at `value.category_update_timestamp`. */
  correctCategory: string | null
  value: TemplateCategoryValue
}

export interface AccountUpdateItem extends ManagementBase {
  kind: 'account_update'
  event: string
  value: AccountUpdateValue
}

export interface PhoneNumberQualityItem extends ManagementBase {
  kind: 'phone_number_quality'
  displayPhoneNumber: string
  event: string
  currentLimit: string | null
  /** The portfolio's daily limit (`max_daily_conversations_per_business`), which replaces `current_limit` in 2026. */
  maxDailyConversations: string | null
  value: PhoneNumberQualityValue
}

export interface PhoneNumberNameItem extends ManagementBase {
  kind: 'phone_number_name'
  displayPhoneNumber: string
  decision: string
  value: PhoneNumberNameValue
}

/** A change of a field we do not model; kept whole so it can be stored and looked at later. */
export interface UnknownItem extends ManagementBase {
  kind: 'unknown'
  field: string
  value: unknown
}

/** Something that could not be read at all: a body that is not a WhatsApp envelope, or a part without the ids we need. */
export interface InvalidItem {
  kind: 'invalid'
  itemKey: string
  wabaId: string | null
  field: string | null
  /** Where in the body, e.g. `entry[0].changes[1].value.statuses[2]`; `$` for the whole body. */
  path: string
  reason: string
  raw: unknown
}

export type DeliveryItem =
  | MessageItem | StatusItem | ErrorItem | TemplateStatusItem | TemplateQualityItem | TemplateCategoryItem | AccountUpdateItem
  | PhoneNumberQualityItem | PhoneNumberNameItem | UnknownItem | InvalidItem
export type DeliveryItemKind = DeliveryItem['kind']

/** JSON with object keys sorted at every level, so equal values hash equally whatever order Meta used. */
export function canonicalJson(value: unknown): string {
  if (typeof value === 'bigint') return value.toString()
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`
}

export const hashOf = (value: unknown): string => sha256(canonicalJson(value)).toString('hex')

const describe = (error: z.ZodError): string =>
  error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`).join('; ')

const invalid = (path: string, raw: unknown, reason: string, wabaId: string | null = null, field: string | null = null): InvalidItem => ({
  kind: 'invalid',
  itemKey: `invalid:${hashOf({ path, raw })}`,
  wabaId,
  field,
  path,
  reason,
  raw,
})

const EnvelopeShell = z.looseObject({ object: z.literal('whatsapp_business_account'), entry: z.array(z.unknown()) })
const EntryShell = z.looseObject({ id: z.string().min(1), time: z.number().optional(), changes: z.array(z.unknown()) })
const ChangeShell = z.looseObject({ field: z.string().min(1), value: z.unknown() })

interface EntryScope {
  wabaId: string
  time: number | undefined
}

/**
 * Turns one webhook delivery into a flat list of typed items, in the order Meta sent them (entries, then changes, then
 * messages, statuses and value-level errors of each change). Never throws: whatever cannot be read becomes an `invalid`
 * item (or an `unknown`-typed message when it still has an id), so nothing is dropped silently.
 */
export function splitDelivery(body: unknown): DeliveryItem[] {
  const envelope = EnvelopeShell.safeParse(body)
  if (!envelope.success) return [invalid('$', body, `not a WhatsApp webhook envelope: ${describe(envelope.error)}`)]

  const items: DeliveryItem[] = []
  envelope.data.entry.forEach((rawEntry, e) => {
    const entryPath = `entry[${e}]`
    const entry = EntryShell.safeParse(rawEntry)
    if (!entry.success) {
      items.push(invalid(entryPath, rawEntry, describe(entry.error)))
      return
    }
    const scope: EntryScope = { wabaId: entry.data.id, time: entry.data.time }
    entry.data.changes.forEach((rawChange, c) => {
      const changePath = `${entryPath}.changes[${c}]`
      try {
        const change = ChangeShell.safeParse(rawChange)
        if (!change.success) {
          items.push(invalid(changePath, rawChange, describe(change.error), scope.wabaId))
          return
        }
        items.push(...splitChange(scope, change.data.field, change.data.value, `${changePath}.value`))
      } catch (err) {
        // A safety net: the readers above are meant not to throw, but one bad change must not cost the others.
        items.push(invalid(changePath, rawChange, `unexpected: ${err instanceof Error ? err.message : String(err)}`, scope.wabaId))
      }
    })
  })
  return items
}

/** Meta's own reference shows a quality update under `message_template_status_update`; read it as what it is. */
const isQualityValue = (value: unknown) => isObject(value) && value.event === undefined && value.new_quality_score !== undefined

function splitChange(scope: EntryScope, field: string, value: unknown, path: string): DeliveryItem[] {
  if (field === 'messages') return splitMessagesValue(scope, value, path)
  if (field === 'message_template_status_update' && isQualityValue(value)) field = 'message_template_quality_update'
  if (!isKnownField(field)) {
    return [{ kind: 'unknown', itemKey: `unknown:${field}:${hashOf({ wabaId: scope.wabaId, time: scope.time, field, value })}`, wabaId: scope.wabaId, at: at(scope), field, value }]
  }
  const parsed = (SCHEMAS[field] as z.ZodType).safeParse(value)
  if (!parsed.success) return [invalid(path, value, describe(parsed.error), scope.wabaId, field)]
  return [managementItem(scope, field as Exclude<KnownField, 'messages'>, parsed.data as never, value)]
}

const at = (scope: EntryScope): Date | null => (scope.time === undefined ? null : fromUnixSeconds(scope.time))

/** Management changes carry no id of their own: the entry's trigger time tells repeats of one event from new events. */
const occurrence = (scope: EntryScope, value: unknown): string => (scope.time === undefined ? hashOf(value) : String(scope.time))

type ManagementValue<F extends Exclude<KnownField, 'messages'>> = z.infer<(typeof FIELD_SCHEMAS)[F]>

function managementItem<F extends Exclude<KnownField, 'messages'>>(scope: EntryScope, field: F, v: ManagementValue<F>, raw: unknown): DeliveryItem {
  const base = { wabaId: scope.wabaId, at: at(scope) }
  const when = occurrence(scope, raw)
  switch (field) {
    case 'message_template_status_update': {
      const value = v as TemplateStatusValue
      const templateId = String(value.message_template_id)
      return { kind: 'template_status', itemKey: `template_status:${templateId}:${value.event}:${when}`, ...base, templateId, event: value.event, value }
    }
    case 'message_template_quality_update': {
      const value = v as TemplateQualityValue
      const templateId = String(value.message_template_id)
      return {
        kind: 'template_quality', itemKey: `template_quality:${templateId}:${value.new_quality_score}:${when}`, ...base,
        templateId, previousScore: value.previous_quality_score, newScore: value.new_quality_score, value,
      }
    }
    case 'template_category_update': {
      const value = v as TemplateCategoryValue
      const templateId = String(value.message_template_id)
      const newCategory = value.new_category ?? null
      return {
        kind: 'template_category', itemKey: `template_category:${templateId}:${newCategory ?? value.correct_category ?? ''}:${when}`, ...base,
        templateId, previousCategory: value.previous_category ?? null, newCategory, correctCategory: value.correct_category ?? null, value,
      }
    }
    case 'account_update': {
      const value = v as AccountUpdateValue
      return { kind: 'account_update', itemKey: `account_update:${scope.wabaId}:${value.event}:${when}`, ...base, event: value.event, value }
    }
    case 'phone_number_quality_update': {
      const value = v as PhoneNumberQualityValue
      return {
        kind: 'phone_number_quality', itemKey: `phone_number_quality:${value.display_phone_number}:${value.event}:${when}`, ...base,
        displayPhoneNumber: value.display_phone_number, event: value.event, currentLimit: value.current_limit ?? null,
        maxDailyConversations: value.max_daily_conversations_per_business === undefined ? null : String(value.max_daily_conversations_per_business), value,
      }
    }
    case 'phone_number_name_update': {
      const value = v as PhoneNumberNameValue
      return {
        kind: 'phone_number_name', itemKey: `phone_number_name:${value.display_phone_number}:${value.decision}:${when}`, ...base,
        displayPhoneNumber: value.display_phone_number, decision: value.decision, value,
      }
    }
  }
  // Unreachable while every known field has a case above; kept so a new field cannot silently vanish.
  return { kind: 'unknown', itemKey: `unknown:${field}:${hashOf({ wabaId: scope.wabaId, time: scope.time, field, value: raw })}`, ...base, field, value: raw }
}

function splitMessagesValue(scope: EntryScope, value: unknown, path: string): DeliveryItem[] {
  const shell = MessagesValueShell.safeParse(value)
  if (!shell.success) return [invalid(path, value, describe(shell.error), scope.wabaId, 'messages')]
  const { metadata, contacts = [], messages = [], statuses = [], errors = [] } = shell.data
  const phone: PhoneScope = { wabaId: scope.wabaId, phoneNumberId: metadata.phone_number_id, displayPhoneNumber: metadata.display_phone_number }
  const names = contactNames(contacts)
  const items: DeliveryItem[] = []

  messages.forEach((raw, i) => {
    const item = messageItem(phone, names, raw)
    items.push(typeof item === 'string' ? invalid(`${path}.messages[${i}]`, raw, item, scope.wabaId, 'messages') : item)
  })

  statuses.forEach((raw, i) => {
    const parsed = MessageStatus.safeParse(raw)
    if (!parsed.success) {
      items.push(invalid(`${path}.statuses[${i}]`, raw, describe(parsed.error), scope.wabaId, 'messages'))
      return
    }
    const status = toNormalizedStatus(parsed.data)
    items.push({ kind: 'status', itemKey: `status:${status.wamid}:${status.status}:${parsed.data.timestamp}`, ...phone, status, raw })
  })

  errors.forEach((raw, i) => {
    const parsed = WaError.safeParse(raw)
    if (!parsed.success) {
      items.push(invalid(`${path}.errors[${i}]`, raw, describe(parsed.error), scope.wabaId, 'messages'))
      return
    }
    // Value-level errors have no id or timestamp; the index keeps two identical errors of one delivery apart.
    const itemKey = `error:${hashOf({ wabaId: scope.wabaId, phoneNumberId: phone.phoneNumberId, index: i, error: raw })}`
    items.push({ kind: 'error', itemKey, ...phone, error: normalizeError(parsed.data), raw })
  })

  return items
}

interface ContactInfo {
  name: string | null
  identityKeyHash: string | null
}

/** Profile names and identity key hashes by wa_id and by business-scoped user id; contacts that do not parse are not used. */
function contactNames(contacts: unknown[]): Map<string, ContactInfo> {
  const names = new Map<string, ContactInfo>()
  for (const raw of contacts) {
    const contact = Contact.safeParse(raw)
    if (!contact.success) continue
    const info = { name: contact.data.profile?.name || null, identityKeyHash: contact.data.identity_key_hash || null }
    if (!info.name && !info.identityKeyHash) continue
    if (contact.data.wa_id) names.set(contact.data.wa_id, info)
    if (contact.data.user_id) names.set(contact.data.user_id, info)
  }
  return names
}

const contactFor = (names: Map<string, ContactInfo>, from: string | null, fromUserId: string | null): ContactInfo | undefined =>
  (from !== null ? names.get(from) : undefined) ?? (fromUserId !== null ? names.get(fromUserId) : undefined)

const nameFor = (names: Map<string, ContactInfo>, from: string | null, fromUserId: string | null): string | null =>
  contactFor(names, from, fromUserId)?.name ?? null

/** The contact's identity_key_hash joins the message's identity block, so both are stored together. */
function withKeyHash(names: Map<string, ContactInfo>, message: NormalizedMessage): NormalizedMessage {
  const keyHash = contactFor(names, message.from, message.fromUserId)?.identityKeyHash
  if (!keyHash) return message
  return { ...message, identity: { ...(message.identity ?? { acknowledged: null, createdAt: null, hash: null }), keyHash } }
}

/** A parsed message, an `unknown`-typed message when it fails its schema but has an id, or the reason when it has no id. */
function messageItem(phone: PhoneScope, names: Map<string, ContactInfo>, raw: unknown): MessageItem | string {
  const parsed = parseInboundMessage(raw)
  if (parsed.success) {
    const message = withKeyHash(names, toNormalizedMessage(parsed.data))
    return { kind: 'message', itemKey: `message:${message.wamid}`, ...phone, contactName: nameFor(names, message.from, message.fromUserId), message, parseError: null, raw }
  }
  if (!isObject(raw) || typeof raw.id !== 'string' || raw.id === '') return describe(parsed.error)

  const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null)
  const rawType = str(raw.type) ?? 'unknown'
  const timestamp = UnixSeconds.safeParse(raw.timestamp)
  const message: UnparsedMessage = {
    wamid: raw.id,
    from: str(raw.from),
    fromUserId: str(raw.from_user_id),
    timestamp: timestamp.success ? fromUnixSeconds(timestamp.data) : null,
    type: 'unknown',
    rawType,
    content: contentOf(raw, rawType),
    isReaction: false,
    isReactionRemoval: false,
  }
  return {
    kind: 'message', itemKey: `message:${message.wamid}`, ...phone, contactName: nameFor(names, message.from, message.fromUserId),
    message, parseError: describe(parsed.error), raw,
  }
}
