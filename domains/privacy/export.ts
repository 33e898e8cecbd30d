/**
 * Subject-access export: everything the platform holds about one person, as one JSON document, from the same
 * catalog erasure reads (domains/marketing/leads/lead-references.ts).
 *
 * The job materialises the document into privacy.export_chunks (pieces of at most CHUNK_BYTES, written while
 * reading each table through a server-side cursor), committed at once: all of the document or none of it, and a
 * retried job starts over cleanly. GET streams the pieces back a few at a time. Neither side ever holds more than
 * a few pieces and one cursor batch, whatever the person's history weighs. Ready exports expire after the
 * tenant's exportsDays (default PRIVACY_EXPORT_TTL_DAYS) and retention deletes them.
 *
 * Document (schemaVersion 1):
 *   { "schemaVersion": 1, "exportId", "tenantId", "status": "ready", "generatedAt",
 *     "subject": { "kind", "hash", "leadIds": [...] },
 *     "tables": { "<schema.table>": { "personal": [columns], "rows": [ { <column>: <value>, ... }, ... ] }, ... },
 *     "excluded": { "<schema.table>": "why" },
 *     "rowCounts": { "<schema.table>": n } }
 * Rows are the tables' rows with their column names; consents and form submissions also carry `form`
 * (id, name and the form's consent settings, whose text is what the person agreed to).
 */
import { PassThrough, type Readable } from 'node:stream'
import { pseudonym } from '../../lib/crypto.js'
import { withTenant, type Sql, type Tx } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import { normalizeEmail } from '../marketing/leads/identity/email.js'
import { normalizePhone, phoneMatchKey, type CountryCode } from '../marketing/leads/identity/phone.js'
import { LEAD_REFERENCES, catalogTables, type TableName } from '../marketing/leads/lead-references.js'
import { insertAuditEntry } from '../tenancy/queries.js'
import { EXPORT_SCHEMA_VERSION, EXPORT_SUBJECT_TASK, type CreateExportBody, type ExportView } from './export-schemas.js'
import * as q from './export-queries.js'
import { tenantDefaultCountry } from './retention-queries.js'
import { retentionSettingsOf } from './retention.js'
import { drained } from '../../lib/streams.js'

/**
 * A piece of the stored document. Below V8's large-object size (128 KiB), so the garbage of writing and reading
 * pieces is collected by the young generation instead of piling up in the old one until a full GC.
 */
export const CHUNK_BYTES = 64 * 1024
/** Pieces read per short transaction while streaming a document to a client. */
const PAGE_PIECES = 4
/** Rows fetched per cursor round trip. */
const CURSOR_BATCH = 500

/**
 * Catalogued tables an export leaves out, each with why. Platform tables are raw copies before routing (a delivery
 * may carry several tenants' people); what they carried is in the tenant tables above and they are pruned after
 * WEBHOOK_RETENTION_DAYS. Earlier exports are copies of the rest.
 */
export const EXPORT_EXCLUDED: Readonly<Partial<Record<TableName, string>>> = {
  'privacy.export_requests': 'earlier export requests: only their dates and a hash of the subject',
  'privacy.export_chunks': 'earlier exports: copies of the tables in this document',
  ...Object.fromEntries(LEAD_REFERENCES.filter((e) => e.platform).map((e) => [e.table, 'a raw copy kept before routing, for at most the webhook retention period; its content is in the tables above'])),
}

/** The tables an export holds, in catalog order. */
export const exportTables = (): TableName[] => catalogTables().filter((t) => !(t in EXPORT_EXCLUDED))

/** The keyed hash that names a subject in audit entries and requests; never the subject itself. */
export const subjectHash = (kind: 'lead' | 'email' | 'phone', value: string) => pseudonym('privacy.subject', `${kind}:${value}`)

type Who = { tenantId: string; actor: string; requestId: string | null }

/** Resolves the subject to a lead (or none), records the request and its audit entry, and queues the job: one commit. */
export async function requestExport(sql: Sql, who: Who, body: CreateExportBody): Promise<{ id: string; status: 'pending' }> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const { kind, hash, leadId } = await resolveSubject(tx, who.tenantId, body)
    const created = await q.insertExportRequest(tx, { tenantId: who.tenantId, leadId, subjectKind: kind, subjectHash: hash, requestedBy: who.actor, requestId: who.requestId })
    await insertAuditEntry(tx, {
      tenantId: who.tenantId, actor: who.actor, action: 'privacy.export_requested', targetType: 'privacy_export', targetId: created.id,
      details: { subjectKind: kind, subjectHash: hash, found: leadId !== null }, requestId: who.requestId ?? undefined,
    })
    await q.enqueueExportJob(tx, EXPORT_SUBJECT_TASK, who.tenantId, created.id)
    return created
  })
}

async function resolveSubject(tx: Tx, tenantId: string, body: CreateExportBody) {
  if ('leadId' in body) {
    // RLS hides other tenants' leads: theirs and unknown ids are the same 404, and nothing is recorded.
    if (!(await q.leadExists(tx, body.leadId))) throw new AppError('NOT_FOUND', `lead ${body.leadId} not found`)
    return { kind: 'lead' as const, hash: subjectHash('lead', body.leadId), leadId: body.leadId }
  }
  if ('email' in body) {
    const email = normalizeEmail(body.email)
    if (!email) throw new AppError('BAD_REQUEST', 'email is not a valid email address', { details: [{ path: 'email', message: 'invalid email' }] })
    const [leadId] = await q.leadIdsByKey(tx, tenantId, { email })
    return { kind: 'email' as const, hash: subjectHash('email', email), leadId: leadId ?? null }
  }
  const country = (await tenantDefaultCountry(tx, tenantId)) as CountryCode | null
  const phone = normalizePhone(body.phone, country ?? undefined)
  if (!phone) throw new AppError('BAD_REQUEST', 'phone is not a valid phone number', { details: [{ path: 'phone', message: 'invalid phone number' }] })
  const key = phoneMatchKey(phone.e164)
  const [leadId] = await q.leadIdsByKey(tx, tenantId, { phoneKey: key })
  return { kind: 'phone' as const, hash: subjectHash('phone', key), leadId: leadId ?? null }
}

// ---------------------------------------------------------------------------------------------------------
// The job.

export type ExportOutcome = 'ready' | 'already_ready' | 'missing'

/**
 * Writes the document of one request. Idempotent: a ready export is left alone; anything else starts over (pieces
 * of an earlier, rolled-back attempt never committed). The pieces commit together with `ready`; each table is read by
 * one statement, so its rows are one snapshot.
 */
export async function produceExport(sql: Sql, tenantId: string, exportId: string, defaultTtlDays: number): Promise<ExportOutcome> {
  const started = await withTenant(sql, tenantId, async (tx) => {
    const request = await q.lockExportRequest(tx, exportId)
    if (!request) return 'missing' as const
    if (request.status === 'ready') return 'already_ready' as const
    await q.markExportRunning(tx, exportId)
    return 'run' as const
  })
  if (started !== 'run') return started

  // Two transactions: `read` walks the tables through cursors, `write` stores the pieces and marks the request
  // ready when the last one is in (one commit: all of the document or none of it). They cannot be one transaction:
  // a connection that has a cursor open runs nothing else until the cursor is done.
  return withTenant(sql, tenantId, (write) => withTenant(sql, tenantId, async (read) => {
    const request = await q.lockExportRequest(write, exportId)
    if (!request || request.status === 'ready') return request ? 'already_ready' as const : 'missing' as const
    await q.deleteExportChunks(write, exportId)
    const leadIds = request.leadId ? await q.leadFamily(read, tenantId, request.leadId) : []
    const keys = leadIds.length > 0 ? await q.identityKeysOf(read, tenantId, leadIds) : []

    const writer = new ChunkWriter((seq, body) => q.insertExportChunk(write, { tenantId, exportId, seq, body }))
    const rowCounts: Record<string, number> = {}
    writer.write(
      `{"schemaVersion":${EXPORT_SCHEMA_VERSION},"exportId":${JSON.stringify(exportId)},"tenantId":${JSON.stringify(tenantId)},` +
      `"status":"ready","generatedAt":${JSON.stringify(new Date().toISOString())},` +
      `"subject":${JSON.stringify({ kind: request.subjectKind, hash: request.subjectHash, leadIds })},"tables":{`,
    )
    let firstTable = true
    for (const table of exportTables()) {
      const personal = [...new Set(LEAD_REFERENCES.filter((e) => e.table === table).flatMap((e) => e.personal))]
      writer.write(`${firstTable ? '' : ','}${JSON.stringify(table)}:{"personal":${JSON.stringify(personal)},"rows":[`)
      firstTable = false
      let n = 0
      if (leadIds.length > 0) {
        for await (const rows of q.subjectRowsCursor(read, tenantId, table, leadIds, keys, CURSOR_BATCH)) {
          // A full piece is stored at once, on the other connection: the buffer never outgrows a piece and a row.
          for (const row of rows) {
            writer.write(n++ === 0 ? row.doc : `,${row.doc}`)
            await writer.flushFull()
          }
        }
      }
      rowCounts[table] = n
      writer.write(']}')
    }
    writer.write(`},"excluded":${JSON.stringify(EXPORT_EXCLUDED)},"rowCounts":${JSON.stringify(rowCounts)}}`)
    await writer.end()
    const { exportsDays } = await retentionSettingsOf(write, tenantId, defaultTtlDays)
    await q.markExportReady(write, exportId, rowCounts, writer.bytes, exportsDays)
    return 'ready' as const
  }))
}

/** Records that a request's job gave up (its last attempt failed): a code, never the error text. */
export const failExport = (sql: Sql, tenantId: string, exportId: string, code: string) =>
  withTenant(sql, tenantId, (tx) => q.markExportFailed(tx, exportId, code))

/** Buffers text and stores it as numbered pieces of about CHUNK_BYTES. */
class ChunkWriter {
  private parts: string[] = []
  private size = 0
  private seq = 0
  bytes = 0

  constructor(private readonly storeChunk: (seq: number, body: string) => Promise<unknown>) {}

  write(text: string): void {
    this.parts.push(text)
    // String length counts UTF-16 units, not bytes: close enough to bound a piece, and exact for ASCII.
    this.size += text.length
  }

  /** Stores the buffer as a piece once it has reached CHUNK_BYTES. */
  async flushFull(): Promise<void> {
    if (this.size >= CHUNK_BYTES) await this.flush()
  }

  async end(): Promise<void> {
    if (this.size > 0) await this.flush()
  }

  private async flush(): Promise<void> {
    const body = this.parts.join('')
    this.parts = []
    this.size = 0
    this.bytes += Buffer.byteLength(body)
    await this.storeChunk(this.seq++, body)
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reading.

const viewOf = (r: NonNullable<Awaited<ReturnType<typeof q.findExportRequest>>>): ExportView => ({
  id: r.id,
  status: r.status === 'ready' && r.expiresAt && r.expiresAt <= new Date() ? 'expired' : r.status,
  subjectKind: r.subjectKind,
  subjectHash: r.subjectHash,
  createdAt: r.createdAt,
  readyAt: r.readyAt,
  expiresAt: r.expiresAt,
  rowCounts: r.rowCounts,
  bytes: r.bytes,
  error: r.error,
})

export type ExportRead = { kind: 'status'; view: ExportView } | { kind: 'document'; view: ExportView; stream: Readable }

/**
 * The request's status, or, when ready and not expired, its document as a stream (read a few pieces at a time,
 * each page in a short transaction). The download is audited.
 */
export async function readExport(sql: Sql, who: Who, exportId: string, onError: (err: unknown) => void): Promise<ExportRead> {
  const view = await withTenant(sql, who.tenantId, async (tx) => {
    const r = await q.findExportRequest(tx, exportId)
    if (!r) return null
    const v = viewOf(r)
    if (v.status === 'ready') {
      await insertAuditEntry(tx, {
        tenantId: who.tenantId, actor: who.actor, action: 'privacy.export_downloaded', targetType: 'privacy_export', targetId: exportId,
        details: { subjectKind: r.subjectKind, subjectHash: r.subjectHash }, requestId: who.requestId ?? undefined,
      })
    }
    return v
  })
  if (!view) throw new AppError('NOT_FOUND', `export request ${exportId} not found`)
  if (view.status !== 'ready') return { kind: 'status', view }

  // Pieces are read a few at a time, each page in a short transaction of its own: a slow client holds no
  // connection and no transaction open while it reads, and the export cannot change under it (it is ready and only
  // ever deleted, in which case the stream ends in an error rather than truncated).
  const out = new PassThrough()
  ;(async () => {
    let after = -1
    for (;;) {
      const page = await withTenant(sql, who.tenantId, async (tx) => {
        const rows = await q.exportChunksAfter(tx, exportId, after, PAGE_PIECES)
        // Deletion takes every piece at once: no more pieces and no request means it was deleted mid-stream.
        if (rows.length === 0 && !(await q.findExportRequest(tx, exportId))) throw new Error(`export ${exportId} was deleted while streaming`)
        return rows
      })
      if (page.length === 0) break
      for (const piece of page) {
        if (piece.seq !== after + 1) throw new Error(`export ${exportId} lost piece ${after + 1}`)
        after = piece.seq
        if (out.destroyed) return
        if (!out.write(piece.body)) await drained(out)
      }
      if (page.length < PAGE_PIECES) break
    }
    if (after < 0) throw new Error(`export ${exportId} has no pieces`)
  })().then(
    () => out.end(),
    (err) => {
      onError(err)
      out.destroy(err instanceof Error ? err : new Error('export stream failed'))
    },
  )
  return { kind: 'document', view, stream: out }
}

