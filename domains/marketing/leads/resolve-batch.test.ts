import { describe, expect, it } from 'vitest'
import type { BatchLead } from './batch-queries.js'
import { planBatch } from './resolve-batch.js'
import type { LeadSighting } from './schemas.js'

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, s))
const sighting = (over: Partial<LeadSighting>): LeadSighting => ({
  email: null, phoneE164: null, phoneKey: null, name: null, company: null, fields: {}, source: 'web_form', sourceDetails: {}, at: at(0), ...over,
})
const known = (over: Partial<BatchLead> & { id: string }): BatchLead => ({ email: null, phoneE164: null, phoneKey: null, name: null, company: null, ...over })
const ids = () => {
  let n = 0
  return () => `new-${++n}`
}

describe('planBatch: a batch of sightings applied in order, in memory, as one-by-one resolution would', () => {
  it('creates a person once however often the batch names them, keeping what the first said', () => {
    const plan = planBatch([], [
      sighting({ email: 'a@x.io', name: 'Ana', at: at(1) }),
      sighting({ email: 'a@x.io', name: 'Other', fields: { plan: 'basic' }, at: at(3) }),
      sighting({ email: 'a@x.io', fields: { plan: 'premium' }, at: at(2) }),
    ], ids())
    expect(plan.outcomes).toEqual([{ leadId: 'new-1', created: true }, { leadId: 'new-1', created: false }, { leadId: 'new-1', created: false }])
    expect(plan.creates).toEqual([expect.objectContaining({
      id: 'new-1', email: 'a@x.io', name: 'Ana', fields: { plan: 'premium' }, first_seen_at: at(1).toISOString(), last_seen_at: at(3).toISOString(),
    })])
    expect(plan.fills).toEqual([])
  })

  it('fills what a known lead lacks, never what it has, and then knows the person by the new key too', () => {
    const plan = planBatch([known({ id: 'L', email: 'a@x.io', name: 'Ana' })], [
      sighting({ email: 'a@x.io', phoneE164: '+5511912345678', phoneKey: '+5511912345678', name: 'Bia', company: 'Acme' }),
      sighting({ phoneE164: '+5511912345678', phoneKey: '+5511912345678' }),
    ], ids())
    expect(plan.outcomes).toEqual([{ leadId: 'L', created: false }, { leadId: 'L', created: false }])
    expect(plan.fills).toEqual([expect.objectContaining({ id: 'L', email: 'a@x.io', name: 'Ana', company: 'Acme', phone_key: '+5511912345678' })])
    expect(plan.creates).toEqual([])
  })

  it('leaves a key a lead cannot take (it has another) to a new lead of its own', () => {
    const plan = planBatch([known({ id: 'L', email: 'a@x.io', phoneE164: '+5511900000001', phoneKey: '+5511900000001' })], [
      sighting({ email: 'a@x.io', phoneE164: '+5511900000002', phoneKey: '+5511900000002' }),
      sighting({ phoneE164: '+5511900000002', phoneKey: '+5511900000002' }),
    ], ids())
    expect(plan.outcomes).toEqual([{ leadId: 'L', created: false }, { leadId: 'new-1', created: true }])
  })

  it('fills the phone of a lead known by a bsuid without giving it the phone key, as the one-by-one update does', () => {
    const plan = planBatch([known({ id: 'W', email: 'w@x.io', phoneKey: 'bsuid:US.123' })], [
      sighting({ email: 'w@x.io', phoneE164: '+5511900000003', phoneKey: '+5511900000003' }),
    ], ids())
    expect(plan.fills).toEqual([expect.objectContaining({ id: 'W', phone_e164: '+5511900000003', phone_key: 'bsuid:US.123' })])
  })

  it('defers a sighting that proves two leads one person, and every later one sharing their keys', () => {
    const plan = planBatch([
      known({ id: 'E', email: 'a@x.io', phoneE164: '+5511900000009', phoneKey: '+5511900000009' }),
      known({ id: 'P', phoneE164: '+5511900000004', phoneKey: '+5511900000004' }),
    ], [
      sighting({ email: 'a@x.io', phoneE164: '+5511900000004', phoneKey: '+5511900000004' }),
      sighting({ phoneE164: '+5511900000009', phoneKey: '+5511900000009' }), // E's other key
      sighting({ email: 'b@x.io' }), // someone else
    ], ids())
    expect(plan.outcomes).toEqual(['deferred', 'deferred', { leadId: 'new-1', created: true }])
    expect(plan.fills).toEqual([])
  })

  it('makes a new lead of every sighting with nothing to recognize the person by', () => {
    const plan = planBatch([], [sighting({ name: 'Anon' }), sighting({ name: 'Anon' })], ids())
    expect(plan.outcomes).toEqual([{ leadId: 'new-1', created: true }, { leadId: 'new-2', created: true }])
  })
})
