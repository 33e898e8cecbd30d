/**
 * Everything in the database that refers to a person: one entry per table, with how a merge and an erasure treat
 * it. Merge (domains/marketing/leads) and erasure and export (domains/privacy) read this list instead of keeping
 * their own, and test/lead-references.int.test.ts fails for any foreign key to marketing.leads, and any column
 * named like a person's data (lead_id, phone*, email*, wa_id, ip*, user_agent, …), that is not listed here or
 * declared not personal below. A new table enters this catalog or the suite is red.
 *
 * Table and column names are constants of this file, never input: code that builds SQL from them uses postgres.js
 * identifiers (`tx(name)`), not string concatenation.
 */

export type TableName = `${string}.${string}`

/** How a table reaches the person. */
export type Reach =
  /** A column holds the lead id. */
  | { by: 'lead'; column: string }
  /** Rows belong to a row of another catalogued table (`column` here = `parentColumn` there). */
  | { by: 'parent'; column: string; parent: TableName; parentColumn: string }
  /**
   * No lead id: rows are found by the person's identity keys inside them (raw inboxes, quarantine, job payloads).
   * `columns` are searched; `keys` says which of the subject's keys can appear there.
   */
  | { by: 'content'; columns: string[]; keys: IdentityKey[] }

/** The forms a subject's identity takes in stored data: all of them are searched by erasure's verification pass. */
export type IdentityKey = 'email' | 'phone' | 'wa_id' | 'lead_id' | 'name'

export type MergePolicy =
  /** Point the rows at the survivor (`update … set <column> = survivor where <column> = merged`). */
  | { kind: 'move' }
  /** Leave them on the merged lead, which stays as a row with merged_into set; `why` says why that is right. */
  | { kind: 'keep'; why: string }
  /**
   * Rows of both leads must be combined by a rule, not moved blindly (a uniqueness, a single active
   * conversation, the lead row itself): `rule` names the function in the merge code that does it.
   */
  | { kind: 'combine'; rule: string }
  /** The rows follow their parent (Reach 'parent') or are not tied to a lead (Reach 'content'). */
  | { kind: 'follows' }

export type ErasePolicy =
  /** Delete the subject's rows. */
  | { kind: 'delete' }
  /**
   * Keep the rows, without identity: set `null` columns to null and replace `redact` columns (jsonb or text)
   * with a redacted value; `why` says what the kept rows are for (counts, aggregates, the business's own records).
   */
  | { kind: 'anonymise'; null: string[]; redact: string[]; why: string }

export interface LeadReference {
  table: TableName
  reach: Reach
  /** Columns that hold personal data (exported to the subject, cleared by erasure). */
  personal: string[]
  merge: MergePolicy
  erase: ErasePolicy
  /** Platform tables (no tenant_id, outside RLS) are reached by operator-level code only. */
  platform?: true
  note?: string
}

export const LEAD_REFERENCES: readonly LeadReference[] = [
  {
    table: 'campaigns.broadcast_recipients',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['wa_id', 'components', 'skip_detail'],
    merge: { kind: 'keep', why: "a broadcast's audience is a snapshot of who was targeted then (one row per lead and per number); the message it sent moves to the survivor with the lead's messages" },
    erase: { kind: 'anonymise', null: ['lead_id', 'wa_id', 'components', 'skip_detail'], redact: [], why: "the broadcast's counts (sent, failed, skipped by reason) stay right; the row no longer names anyone (its message is deleted with the subject's messages)" },
    note: 'Broadcast recipients (domains/campaigns/broadcasts). components are the template parameters rendered from the lead (a name, a custom field).',
  },
  {
    table: 'marketing.leads',
    reach: { by: 'lead', column: 'id' },
    personal: ['phone_e164', 'phone_key', 'wa_id', 'email', 'name', 'profile_name', 'company', 'fields', 'source_details', 'tags'],
    merge: { kind: 'combine', rule: 'absorbMergedLead' },
    erase: { kind: 'delete' },
    note: 'The person. Deleted last, after every table that points at it.',
  },
  {
    table: 'marketing.leads',
    reach: { by: 'lead', column: 'merged_into' },
    personal: [],
    merge: { kind: 'move' },
    erase: { kind: 'delete' },
    note: 'Leads merged into the subject earlier are the same person.',
  },
  {
    table: 'marketing.lead_interactions',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['details'],
    merge: { kind: 'move' },
    erase: { kind: 'delete' },
  },
  {
    table: 'marketing.form_submissions',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['answers', 'utm', 'page_url', 'referrer', 'ip', 'user_agent'],
    merge: { kind: 'move' },
    erase: { kind: 'delete' },
  },
  {
    table: 'marketing.consents',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['ip', 'user_agent'],
    merge: { kind: 'move' },
    erase: { kind: 'delete' },
    note: 'After erasure the suppression (privacy.suppressions) is what stops further contact, not the consent rows.',
  },
  {
    table: 'marketing.lead_merges',
    reach: { by: 'lead', column: 'survivor_id' },
    personal: ['matched_on', 'merged_snapshot'],
    merge: { kind: 'move' },
    erase: { kind: 'delete' },
    note: 'Earlier merges into the merged lead now read as merges into the survivor.',
  },
  {
    table: 'marketing.lead_merges',
    reach: { by: 'lead', column: 'merged_id' },
    personal: ['matched_on', 'merged_snapshot'],
    merge: { kind: 'keep', why: 'the record of which lead was merged away; its merged_id is that lead' },
    erase: { kind: 'delete' },
  },
  {
    table: 'marketing.form_submission_inbox',
    reach: { by: 'content', columns: ['submission'], keys: ['email', 'phone', 'name'] },
    personal: ['submission', 'ip', 'user_agent', 'referer', 'last_error'],
    merge: { kind: 'follows' },
    erase: { kind: 'delete' },
    note: 'Submissions not applied yet; erasure applies or holds them first so none recreates the subject afterwards.',
  },
  {
    table: 'analytics.events',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['properties', 'anonymous_id', 'session_id', 'context', 'click_id'],
    merge: { kind: 'move' },
    erase: { kind: 'anonymise', null: ['lead_id', 'anonymous_id', 'session_id', 'context', 'click_id'], redact: ['properties'], why: 'event counts and rollups stay right; the event no longer names anyone (nor the visitor id, session, page context or ad click id that could lead back); the enrichment dimensions (channel, device, country) stay' },
  },
  {
    table: 'analytics.daily_uniques',
    reach: { by: 'lead', column: 'lead_id' },
    personal: [],
    merge: { kind: 'combine', rule: 'combineDailyUniques' },
    erase: { kind: 'delete' },
    note: "Unique leads per day, derived from analytics.events (lead_id is the subject of a 'lead' row). The merge's and the erasure's changes to the events dirty their buckets, and the roll-up recounts those days from raw, so the rows agree with raw either way; visitor rows of an erased person go with that recount (erasure nulls the events' anonymous_id).",
  },
  {
    table: 'analytics.event_inbox',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['anonymous_id', 'session_id', 'properties', 'context', 'last_error'],
    merge: { kind: 'move' },
    erase: { kind: 'delete' },
    note: 'Client events (POST /v1/events) not moved into analytics.events yet; the lead id is as the client sent it. Page URLs, referrer and user agent are inside context.',
  },
  {
    table: 'analytics.identities',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['anonymous_id'],
    merge: { kind: 'move' },
    erase: { kind: 'delete' },
    note: "A website visitor's anonymous id linked to the lead (migration 0026); its events carry the lead from then on.",
  },
  {
    table: 'analytics.posthog_outbox',
    reach: { by: 'parent', column: 'event_id', parent: 'analytics.events', parentColumn: 'id' },
    personal: [],
    merge: { kind: 'follows' },
    erase: { kind: 'delete' },
    note: "Events waiting to be forwarded to PostHog (migration 0025). They copy nothing personal (the drain reads the event when it sends), but an erased person's events must not leave afterwards, even anonymised: erasure deletes them, found through their event before it is anonymised.",
  },
  {
    table: 'whatsapp.messages',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['wa_id', 'content', 'context', 'referral', 'errors', 'identity'],
    merge: { kind: 'move' },
    erase: { kind: 'delete' },
  },
  {
    table: 'whatsapp.message_statuses',
    reach: { by: 'parent', column: 'wamid', parent: 'whatsapp.messages', parentColumn: 'wamid' },
    personal: ['recipient_id', 'errors', 'conversation', 'biz_opaque_callback_data'],
    merge: { kind: 'follows' },
    erase: { kind: 'delete' },
  },
  {
    table: 'whatsapp.message_statuses',
    reach: { by: 'content', columns: ['recipient_id'], keys: ['wa_id'] },
    personal: ['recipient_id', 'errors', 'conversation', 'biz_opaque_callback_data'],
    merge: { kind: 'follows' },
    erase: { kind: 'delete' },
    note: 'Statuses that arrived for a message we never stored (kept to apply later) have no parent row: found by their recipient.',
  },
  {
    table: 'whatsapp.service_windows',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['wa_id'],
    merge: { kind: 'move' },
    erase: { kind: 'delete' },
    note: 'Keyed by (tenant, phone_number_id, wa_id), not by lead: moving lead_id never collides.',
  },
  {
    table: 'whatsapp.outbound_sends',
    reach: { by: 'parent', column: 'message_id', parent: 'whatsapp.messages', parentColumn: 'id' },
    personal: ['wa_id', 'body'],
    merge: { kind: 'follows' },
    erase: { kind: 'delete' },
    note: 'Pending sends to the subject are cancelled by their deletion.',
  },
  {
    table: 'whatsapp.send_rate_limits',
    reach: { by: 'content', columns: ['key'], keys: ['wa_id'] },
    personal: ['key'],
    merge: { kind: 'follows' },
    erase: { kind: 'delete' },
    note: "The per-recipient pair rate is keyed 'pair:<number id>:<wa_id>' (pruned an hour after its last send); the number keys name no one.",
  },
  {
    table: 'conversations.conversations',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['wa_id', 'state', 'handover_note'],
    merge: { kind: 'combine', rule: 'adoptConversations' },
    erase: { kind: 'delete' },
    note: 'One conversation per lead and business number. A merge moves the merged lead\'s conversations to the survivor; where both have one on the same number the survivor\'s continues and the merged one is ended and stays on the merged lead (see domains/marketing/leads/README.md, merging).',
  },
  {
    table: 'conversations.events',
    reach: { by: 'parent', column: 'conversation_id', parent: 'conversations.conversations', parentColumn: 'id' },
    personal: ['payload', 'actions', 'last_error'],
    merge: { kind: 'follows' },
    erase: { kind: 'delete' },
  },
  {
    table: 'whatsapp.webhook_deliveries',
    reach: { by: 'content', columns: ['payload'], keys: ['wa_id', 'phone', 'name'] },
    personal: ['payload'],
    merge: { kind: 'follows' },
    erase: { kind: 'delete' },
    platform: true,
    note: 'Raw Meta deliveries. Unprocessed ones are processed first, so the erasure sees what they create.',
  },
  {
    table: 'whatsapp.unparseable_deliveries',
    reach: { by: 'content', columns: ['raw_body'], keys: ['wa_id', 'phone', 'name'] },
    personal: ['raw_body'],
    merge: { kind: 'follows' },
    erase: { kind: 'delete' },
    platform: true,
  },
  {
    table: 'whatsapp.quarantined_items',
    reach: { by: 'content', columns: ['item'], keys: ['wa_id', 'phone', 'name'] },
    personal: ['item'],
    merge: { kind: 'follows' },
    erase: { kind: 'delete' },
    platform: true,
  },
  {
    table: 'privacy.export_requests',
    reach: { by: 'lead', column: 'lead_id' },
    personal: [],
    merge: { kind: 'keep', why: 'an export is a copy of what was held about that lead when it was made; it expires within days' },
    erase: { kind: 'delete' },
    note: 'Subject-access requests (domains/privacy/export.ts). The subject itself is only a keyed hash here.',
  },
  {
    table: 'privacy.export_chunks',
    reach: { by: 'parent', column: 'export_id', parent: 'privacy.export_requests', parentColumn: 'id' },
    personal: ['body'],
    merge: { kind: 'follows' },
    erase: { kind: 'delete' },
    note: 'The export document itself: a copy of everything below about the subject, deleted when the export expires.',
  },
  {
    table: 'marketing.lead_attributions',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['ctwa_clid'],
    merge: { kind: 'combine', rule: 'adoptAttribution' },
    erase: { kind: 'delete' },
    note: "A lead's first campaign touch (domains/marketing/leads/attribution.ts). A merge keeps the earlier of the two leads' touches on the survivor. ctwa_clid is Meta's id of the person's ad click.",
  },
  {
    table: 'experiments.assignments',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['unit_id', 'anonymous_id'],
    merge: { kind: 'combine', rule: 'adoptAssignments' },
    erase: { kind: 'delete' },
    note: "A lead's (or the visitor it was) experiment variations. A merge moves them to the survivor; where both leads were assigned to one phase the earliest wins and the clash goes to experiments.assignment_conflicts. unit_id is the hashed id (lead id or anonymous id).",
  },
  {
    table: 'experiments.exposures',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['unit_id', 'anonymous_id'],
    merge: { kind: 'move' },
    erase: { kind: 'delete' },
    note: 'Unique per original unit (unit_id), so moving lead_id never collides; a survivor exposed to two variations is what the multiple-exposure check counts.',
  },
  {
    table: 'experiments.pending_exposures',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['unit_id', 'wamid'],
    merge: { kind: 'move' },
    erase: { kind: 'delete' },
    note: 'Template sends naming an experiment: pending until Meta reports them delivered (then an exposure) or failed; message_id follows the message (on delete cascade).',
  },
  {
    table: 'experiments.assignment_conflicts',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['kept_unit_id', 'dropped_unit_id'],
    merge: { kind: 'move' },
    erase: { kind: 'delete' },
  },
  {
    table: 'experiments.assignment_conflicts',
    reach: { by: 'lead', column: 'merged_lead_id' },
    personal: ['kept_unit_id', 'dropped_unit_id'],
    merge: { kind: 'keep', why: 'the record of which lead was merged away with its assignment; merged_lead_id is that lead' },
    erase: { kind: 'delete' },
  },
  {
    table: 'experiments.result_units',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['person'],
    merge: { kind: 'keep', why: "derived rows, re-derived by experiments' triggers (migration 0050) from the assignments, exposures and events the merge moves: the survivor's row is recomputed and the merged lead's deleted, and the per-variation totals follow" },
    erase: { kind: 'delete' },
    note: "What the results count of a person in an experiment's phase (winning variation, variations exposed, goal values). person is the lead id, or 'u:' + the visitor's anonymous id for a visitor that is no lead. Deleting the rows (erasure, or the triggers when the subject's assignments go) takes the person out of the totals.",
  },
  {
    table: 'experiments.result_queue',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['person'],
    merge: { kind: 'keep', why: "keys of persons to recompute (migration 0057), appended by the triggers: the merge's moves of assignments, exposures and events queue the survivor and the merged lead too, and the drain recomputes both whatever the rows say (the merged lead's maintained rows go)" },
    erase: { kind: 'delete' },
    note: "Which (experiment, phase, person) experiments__maintain_results must recompute; person is as in experiments.result_units. Erasing the subject's assignments queues its lead again; the drain (within a minute) finds nothing left and drops the key, and deleting the lead at the end deletes whatever is still queued (on delete cascade).",
  },  {
    table: 'assessments.sessions',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['demographics'],
    merge: { kind: 'move' },
    erase: { kind: 'anonymise', null: ['lead_id', 'conversation_id', 'token_hash'], redact: ['demographics'], why: "the assessment's report (starts, completions, score distribution) and a partner's counts stay right; the session no longer names anyone, and its answers (assessments.responses) are deleted" },
    note: 'An assessment taken on the web (lead_id once known) or in a WhatsApp conversation. The profile fields (age, gender, country, income band, …) are personal.',
  },
  {
    table: 'assessments.responses',
    reach: { by: 'parent', column: 'session_id', parent: 'assessments.sessions', parentColumn: 'id' },
    personal: ['answer'],
    merge: { kind: 'follows' },
    erase: { kind: 'delete' },
    note: 'Answers, free text included. Deleted before their session is anonymised; the result computed from them stays (it names no one).',
  },
  {
    table: 'assessments.link_clicks',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['visitor_id', 'ip_prefix', 'ip_hash', 'user_agent', 'referrer'],
    merge: { kind: 'move' },
    erase: { kind: 'anonymise', null: ['lead_id', 'visitor_id', 'ip_prefix', 'ip_hash', 'user_agent', 'referrer'], redact: [], why: "a partner's click counts stay right; the click no longer names anyone, nor the visitor cookie, network, address hash, browser or referring page that could lead back" },
    note: "Visits of partner links (GET /l/<code>): the address only truncated (/24, /48) plus a keyed hash, the user agent and referrer clipped. lead_id is filled once the visitor is known as a lead (the visitor id's analytics link to a lead joins its clicks, domains/assessments/partners/visitors.ts; later clicks of a known visitor name the lead at once). Clicks that never name a lead lose those details after the tenant's linkClickDetailsDays (assessments__prune_click_details).",
  },
  {
    table: 'assessments.attributions',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['visitor_id'],
    merge: { kind: 'keep', why: "a lead's first and last partner touch is one row per lead; the survivor keeps its own (its purchases are attributed by it), the merged lead's row stays with the merged lead as the record of that lead's touches" },
    erase: { kind: 'delete' },
    note: "First- and last-touch attribution to partner links (by lead, or by visitor cookie before the visitor is a lead). When the visitor becomes a lead, the visitor's row is merged into the lead's (earlier first touch, later last touch, touches summed) or becomes it, in the transaction that links the visitor, so an erasure of the lead finds it by lead_id.",
  },
  {
    table: 'assessments.purchases',
    reach: { by: 'lead', column: 'lead_id' },
    personal: ['visitor_id'],
    merge: { kind: 'move' },
    erase: { kind: 'anonymise', null: ['lead_id', 'visitor_id', 'session_id'], redact: [], why: "the business's sales and the partner's commissions and ledger are money records that must stay; the purchase no longer names the buyer" },
    note: "Purchases reported by the tenant's shop or API, attributed to a partner.",
  },
  {
    table: 'assessments.analyses',
    reach: { by: 'parent', column: 'session_id', parent: 'assessments.sessions', parentColumn: 'id' },
    personal: ['narrative', 'recommendations'],
    merge: { kind: 'follows' },
    erase: { kind: 'delete' },
    note: "The AI (or rule-based) analysis of a result (migration 0036): written from banded answers only, but it is a text about one person's health or wealth, so it goes with the person. The shared pattern cache (assessments.analysis_cache) holds no person's rows.",
  },
  {
    table: 'assessments.ai_calls',
    reach: { by: 'parent', column: 'session_id', parent: 'assessments.sessions', parentColumn: 'id' },
    personal: [],
    merge: { kind: 'follows' },
    erase: { kind: 'delete' },
    note: "The provider calls made for a participant's sessions, counted for the hourly rate limit: when, and how it went. Nothing said is kept.",
  },
]

/**
 * Columns whose names look personal but hold no person's data: the business's own numbers and Meta's ids for them.
 * The catalog test accepts a matching column only if it is catalogued above or listed here with its reason.
 */
export const NOT_PERSONAL: Readonly<Record<string, string>> = {
  'whatsapp.phone_numbers.phone_number_id': "Meta's id of the business's number",
  'whatsapp.phone_numbers.display_phone_number': "the business's own number",
  'whatsapp.messages.phone_number_id': "the business's number (a uuid of whatsapp.phone_numbers)",
  'whatsapp.outbound_sends.phone_number_id': "the business's number",
  'whatsapp.service_windows.phone_number_id': "the business's number",
  'whatsapp.webhook_errors.phone_number_id': "the business's number",
  'conversations.conversations.phone_number_id': "the business's number",
  'onboarding.sessions.phone_number_id': "the number the onboarding business registered (a uuid of whatsapp.phone_numbers)",
  'whatsapp.phone_numbers.verified_name': "the business's name as Meta verified it",
  'whatsapp.business_accounts.name': "the business's WhatsApp account name",
  'whatsapp.templates.name': "a message template's name",
  'core.tenants.name': "the tenant's (a business's) name",
  'core.api_keys.name': 'the label a tenant gave an API key',
  'marketing.forms.name': "a form's name",
  'conversations.flows.name': "a bot flow's name",
  'analytics.events.name': "the event's type (e.g. whatsapp.message_received), not a person's name",
  'analytics.event_aggregations.name': "the counted events' type (e.g. form.viewed), not a person's name",
  'analytics.daily_aggregations.name': "the counted events' type (e.g. form.viewed), not a person's name",
  'analytics.hourly_aggregations.name': "the counted events' type (e.g. form.viewed), not a person's name",
  'analytics.daily_uniques.name': "the event type the subjects did that day (e.g. form.viewed), not a person's name",
  'analytics.event_inbox.name': "the event's name as the client sent it (e.g. pricing.viewed), not a person's name",
  'analytics.site_keys.name': "the label a tenant gave a site key (its website)",
  'app_private.schema_migrations.name': "a migration file's name",
  'experiments.experiments.name': "an experiment's name",
  'experiments.pending_exposures.template_name': "the message template a variation sent (the business's template), not a person's name",
  'assessments.assessments.name': "an assessment's (questionnaire's) name",
  'assessments.partners.name': "a partner's (a distributor the tenant contracts with) business name: the tenant's own commercial records, not a lead",
  'assessments.links.campaign_name': "the name of the campaign a partner link belongs to",
  'assessments.links.phone_number_id': "the business's WhatsApp number a wa.me link opens (a uuid of whatsapp.phone_numbers)",
  // Campaign tables describe what the business sells and advertises; none of them points at a lead or holds a lead's data.
  'campaigns.campaigns.name': "a campaign's name, given by the business",
  'campaigns.products.name': "a product's name in the business's catalog",
  'campaigns.media_plans.name': "a media plan's name, given by the business",
  'campaigns.media_plan_snapshots.name': "the label a user gave a plan snapshot",
  'campaigns.media_plan_templates.name': "a plan template's name",
  'campaigns.broadcasts.name': "a broadcast's name, given by the business",
  'campaigns.broadcasts.template_name': "the name of the business's WhatsApp template",
  'campaigns.broadcasts.phone_number_id': "the business's number (a uuid of whatsapp.phone_numbers)",
  'privacy.erasure_requests.erased_lead_ids': 'ids of the leads an erasure is removing, kept to resume it; emptied when it completes (the leads are gone)',
}

/** Catalogued tables, each once. */
export const catalogTables = (): TableName[] => [...new Set(LEAD_REFERENCES.map((r) => r.table))]
